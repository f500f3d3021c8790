/** The embedded cluster's in-process link: at once when idle, never re-entering a side mid-handler, in order. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inProcessSender, type LinkTurn } from '../protocol/in-process.js';

/** Both directions of one link; each side logs what it handles and may answer from its handler. */
function link(answer: { controller?: (text: string) => string[]; server?: (text: string) => string[] }) {
  const turn: LinkTurn = { delivering: false };
  const log: string[] = [];
  const errors: unknown[] = [];
  let toServer: (message: string[]) => void = () => {};
  const toController = inProcessSender(
    ([frame]) => {
      const text = frame!.toString();
      log.push(`controller got ${text}`);
      for (const reply of answer.controller?.(text) ?? []) toServer([reply]);
      log.push(`controller done with ${text}`);
    },
    (error) => errors.push(error),
    turn,
  );
  toServer = inProcessSender(
    ([frame]) => {
      const text = frame!.toString();
      if (text === 'bad') throw new Error('malformed');
      log.push(`server got ${text}`);
      for (const reply of answer.server?.(text) ?? []) toController([reply]);
      log.push(`server done with ${text}`);
    },
    (error) => errors.push(error),
    turn,
  );
  return { toServer, log, errors };
}

test('an idle link hands a message over before send returns', () => {
  const { toServer, log } = link({});
  toServer(['job']);
  assert.deepEqual(log, ['server got job', 'server done with job']);
});

test('a reply sent from inside a handler waits until the handler is done, so the sender is not re-entered', async () => {
  const { toServer, log } = link({ server: (text) => (text === 'job' ? ['result 1', 'result 2'] : []), controller: (text) => (text === 'result 1' ? ['next job'] : []) });
  toServer(['job']);
  assert.deepEqual(log, ['server got job', 'server done with job'], 'the replies wait for a microtask');
  await Promise.resolve();
  assert.deepEqual(log, [
    'server got job',
    'server done with job',
    'controller got result 1',
    'controller done with result 1', // its 'next job' waits too: the controller was handling a message
    'controller got result 2',
    'controller done with result 2',
  ]);
  await Promise.resolve();
  assert.deepEqual(log.slice(6), ['server got next job', 'server done with next job']);
});

test('a message sent while earlier ones wait is not handed over ahead of them', async () => {
  const { toServer, log } = link({ server: (text) => (text === 'first' ? ['reply'] : []), controller: () => ['second', 'third'] });
  toServer(['first']);
  await Promise.resolve();
  // The controller sent 'second' and 'third' while handling 'reply'; both wait, and keep their order.
  await Promise.resolve();
  assert.deepEqual(
    log.filter((line) => line.startsWith('server got')),
    ['server got first', 'server got second', 'server got third'],
  );
});

test('what a handler throws is reported, and the link goes on', () => {
  const { toServer, log, errors } = link({});
  toServer(['bad']);
  toServer(['job']);
  assert.equal((errors[0] as Error).message, 'malformed');
  assert.deepEqual(log, ['server got job', 'server done with job'], 'the throw did not leave the link busy');
});
