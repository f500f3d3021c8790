/** Quick info and signature help from the language service, as text/plain and text/markdown for inspect_reply. */
import type * as TS from 'typescript5';
import { ts } from './typescript.js';

export interface Formatted {
  plain: string;
  markdown: string;
}

/** Beyond this many overloads, detail level 0 names how many more there are. */
const OVERLOADS_SHOWN = 1;

export function formatQuickInfo(info: TS.QuickInfo, source?: string): Formatted {
  const signature = ts.displayPartsToString(info.displayParts);
  return compose([signature], docsOf(info.documentation, info.tags), source);
}

export function formatSignatures(help: TS.SignatureHelpItems, detail: 0 | 1): Formatted {
  const selected = help.items[help.selectedItemIndex] ?? help.items[0];
  const items = detail === 1 ? help.items : [selected];
  const signatures = items.map(signatureText);
  const more = help.items.length - items.length;
  if (more > 0 && items.length >= OVERLOADS_SHOWN) signatures.push(`(+${more} overload${more > 1 ? 's' : ''})`);
  return compose(signatures, docsOf(selected.documentation, selected.tags));
}

function signatureText(item: TS.SignatureHelpItem): string {
  const parameters = item.parameters.map((p) => ts.displayPartsToString(p.displayParts)).join(ts.displayPartsToString(item.separatorDisplayParts));
  return ts.displayPartsToString(item.prefixDisplayParts) + parameters + ts.displayPartsToString(item.suffixDisplayParts);
}

interface Docs {
  text: string;
  tags: Array<{ name: string; text: string }>;
}

function docsOf(documentation: TS.SymbolDisplayPart[] | undefined, tags: TS.JSDocTagInfo[] | undefined): Docs {
  return {
    text: ts.displayPartsToString(documentation).trim(),
    tags: (tags ?? []).map((tag) => ({ name: tag.name, text: ts.displayPartsToString(tag.text).trim() })),
  };
}

function compose(signatures: string[], docs: Docs, source?: string): Formatted {
  const plain = [signatures.join('\n')];
  const markdown = [`\`\`\`typescript\n${signatures.join('\n')}\n\`\`\``];
  if (docs.text) {
    plain.push(docs.text);
    markdown.push(docs.text);
  }
  if (docs.tags.length) {
    plain.push(docs.tags.map((tag) => `@${tag.name} ${named(tag, (name) => name)}`.trimEnd()).join('\n'));
    markdown.push(docs.tags.map((tag) => `*@${tag.name}* ${named(tag, (name) => `\`${name}\``)}`.trimEnd()).join('  \n'));
  }
  if (source) {
    plain.push(`Source:\n${source}`);
    markdown.push(`Source:\n\`\`\`typescript\n${source}\n\`\`\``);
  }
  return { plain: plain.join('\n\n'), markdown: markdown.join('\n\n') };
}

/** A @param or @template tag's text starts with the name it documents: "values Numeric expressions". */
function named(tag: { name: string; text: string }, name: (name: string) => string): string {
  if (!/^(param|template|typeParam)$/.test(tag.name)) return tag.text;
  const [, first = '', rest = ''] = /^(\S+)\s*([\s\S]*)$/.exec(tag.text) ?? [];
  return rest ? `${name(first)} — ${rest}` : name(first);
}
