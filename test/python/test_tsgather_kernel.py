"""The upstream Jupyter kernel test suite (jupyter_kernel_test.KernelTests) run against the
installed tsgather kernelspec, with every sample the suite offers filled in, plus the checks
jupyter_client users need beyond it. Run by test/kernel-protocol.test.ts, which fails on any
failure or skip; JUPYTER_PATH must find the kernelspec."""

import unittest

import jupyter_kernel_test

TIMEOUT = 30


class TsgatherKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "tsgather"
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("to stderr")'

    completion_samples = [
        {"text": "Math.ab", "matches": {"abs"}},
        {"text": "JSON.str", "matches": {"stringify"}},
    ]

    complete_code_samples = ["1", 'console.log("hi")', "const a = 1;", "function f() { return 1 }"]
    incomplete_code_samples = ["function f() {", "const list = [1,", "if (true) {", "`unterminated ${"]
    invalid_code_samples = ["let = = 1", "1 +* 2", "}"]

    code_page_something = "Math.max?"

    code_generate_error = 'throw new Error("boom")'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"a" + "b"', "result": "'ab'"},
        {"code": "[1, 2, 3].length", "result": "3"},
    ]

    code_display_data = [
        {"code": 'display.html("<b>bold</b>")', "mime": "text/html"},
        {"code": 'display.markdown("*md*")', "mime": "text/markdown"},
        {"code": "display.json({ a: 1 })", "mime": "application/json"},
        {"code": "display.png(Buffer.from([137, 80, 78, 71]))", "mime": "image/png"},
        {"code": 'display.svg("<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>")', "mime": "image/svg+xml"},
    ]

    # a glob, as IPython's history search takes: matches "6 * 7" and no other sample
    code_history_pattern = "6 ? 7"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "Math.max"

    code_clear_output = 'console.log("soon gone"); display.clear()'

    def test_input_reply_without_parent_header(self):
        """jupyter_client's input() sends input_reply with an empty parent header, as the classic
        Notebook does; the kernel answers the one input_request outstanding on that channel."""
        self.flush_channels()
        outputs = []
        prompts = []

        def answer(message):
            prompts.append(message["content"]["prompt"])
            self.kc.input("Ada")

        reply = self.kc.execute_interactive(
            'const who = await input("name? "); `hello ${who}`',
            allow_stdin=True,
            stdin_hook=answer,
            output_hook=outputs.append,
            timeout=TIMEOUT,
        )
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(prompts, ["name? "])
        results = [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]
        self.assertEqual(results, ["'hello Ada'"])

    def test_input_after_an_interrupted_input(self):
        """An input_request left open by an interrupted cell is cancelled: the next cell's request
        is the one outstanding, so a reply without a parent header answers it."""
        self.flush_channels()
        msg_id = self.kc.execute('await input("first? ")', allow_stdin=True)
        request = self.kc.get_stdin_msg(timeout=TIMEOUT)
        self.assertEqual(request["content"]["prompt"], "first? ")
        self.km.interrupt_kernel()
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        self.assertEqual(reply["content"]["ename"], "Interrupted")
        self.flush_channels()

        outputs = []
        reply = self.kc.execute_interactive(
            'const second = await input("second? "); `got ${second}`',
            allow_stdin=True,
            stdin_hook=lambda message: self.kc.input("Ada"),
            output_hook=outputs.append,
            timeout=TIMEOUT,
        )
        self.assertEqual(reply["content"]["status"], "ok")
        shown = [(m["msg_type"], m["content"].get("text") or m["content"].get("data", {}).get("text/plain")) for m in outputs if m["msg_type"] in ("stream", "execute_result")]
        self.assertEqual(shown, [("execute_result", "'got Ada'")])

    def test_history_output_pairs(self):
        """history_request with output=True gives (input, output) pairs, the output being the
        text/plain the cell showed as its value (None for a cell that showed none)."""
        self.flush_channels()
        self.execute_helper("const shown = 40 + 2; shown")
        self.execute_helper("console.log('no value')")
        self.flush_channels()
        msg_id = self.kc.history(output=True, raw=True, hist_access_type="tail", n=2)
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        jupyter_kernel_test.validate_message(reply, "history_reply", msg_id)
        pairs = [entry[2] for entry in reply["content"]["history"]]
        self.assertEqual(pairs, [["const shown = 40 + 2; shown", "42"], ["console.log('no value')", None]])


if __name__ == "__main__":
    unittest.main()
