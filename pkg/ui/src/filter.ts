// The filter box's logic: the hub compiles CEL (pkg/filter) and answers a
// bad expression with an error envelope whose message names positions,
// `filter: 1:20: undeclared reference to 'stauts'; 1:30: ...`.

export interface FilterIssue {
  line: number; // from 1
  column: number; // from 1, in characters
  message: string;
  /** offset is the index into the expression (in UTF-16 units) the
   * position names, for the caret and the input's selection. */
  offset: number;
}

const issueRE = /(\d+):(\d+): /g;

/** parseFilterError reads the positions out of the hub's message. A
 * message without any gives one issue at the start. */
export function parseFilterError(expr: string, message: string): FilterIssue[] {
  const text = message.replace(/^filter: /, "");
  const marks: { line: number; column: number; at: number; end: number }[] = [];
  issueRE.lastIndex = 0;
  for (let m = issueRE.exec(text); m; m = issueRE.exec(text)) {
    // An issue starts the text or follows "; ".
    if (m.index !== 0 && text.slice(m.index - 2, m.index) !== "; ") continue;
    marks.push({ line: +m[1], column: +m[2], at: m.index, end: m.index + m[0].length });
  }
  if (marks.length === 0) return [{ line: 1, column: 1, message: text, offset: 0 }];
  return marks.map((mk, i) => {
    const stop = i + 1 < marks.length ? marks[i + 1].at - 2 : text.length;
    return {
      line: mk.line,
      column: mk.column,
      message: text.slice(mk.end, stop),
      offset: positionOffset(expr, mk.line, mk.column),
    };
  });
}

/** positionOffset turns a 1-based line and character column into an index
 * of expr, clamped to its length. */
export function positionOffset(expr: string, line: number, column: number): number {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = expr.indexOf("\n", off);
    if (nl < 0) return expr.length;
    off = nl + 1;
  }
  // Columns count characters (code points), not UTF-16 units.
  let col = 1;
  while (col < column && off < expr.length) {
    const cp = expr.codePointAt(off)!;
    if (cp === 10) break;
    off += cp > 0xffff ? 2 : 1;
    col++;
  }
  return off;
}

/** celString quotes s as a CEL string literal. */
export function celString(s: string): string {
  let out = '"';
  for (const ch of s) {
    switch (ch) {
      case "\\":
        out += "\\\\";
        break;
      case '"':
        out += '\\"';
        break;
      case "\n":
        out += "\\n";
        break;
      case "\r":
        out += "\\r";
        break;
      case "\t":
        out += "\\t";
        break;
      default:
        out += ch < " " ? "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0") : ch;
    }
  }
  return out + '"';
}

/** clause renders `field == value`: strings quoted, numbers and booleans
 * as they are. */
export function clause(field: string, value: string | number | boolean): string {
  const v = typeof value === "string" ? celString(value) : String(value);
  return `${field} == ${v}`;
}

/** addClause ANDs c to expr, with parentheses where precedence needs
 * them; it leaves expr alone when it already has c as a conjunct. */
export function addClause(expr: string, c: string): string {
  const e = expr.trim();
  if (e === "") return c;
  const parts = topLevelSplit(e, "&&").map((p) => p.trim());
  if (parts.includes(c)) return e;
  return needsParens(e) ? `(${e}) && ${c}` : `${e} && ${c}`;
}

/** needsParens says whether expr has an operator that binds looser than
 * && at its top level (|| or ?:). */
function needsParens(expr: string): boolean {
  let depth = 0;
  let quote = "";
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i];
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = "";
      continue;
    }
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === ")" || ch === "]" || ch === "}") depth--;
    else if (depth === 0 && (ch === "?" || (ch === "|" && expr[i + 1] === "|"))) return true;
  }
  return false;
}

/** topLevelSplit splits expr on op outside brackets and string literals. */
function topLevelSplit(expr: string, op: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = "";
  let from = 0;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i];
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = "";
      continue;
    }
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === ")" || ch === "]" || ch === "}") depth--;
    else if (depth === 0 && expr.startsWith(op, i)) {
      out.push(expr.slice(from, i));
      i += op.length - 1;
      from = i + 1;
    }
  }
  out.push(expr.slice(from));
  return out;
}

/** filterFromURL reads the shared view's filter (?filter=...). */
export function filterFromURL(search: string): string {
  return new URLSearchParams(search).get("filter") ?? "";
}

/** urlWithFilter returns the page address with expr as its filter (none
 * when empty), keeping the other parameters. */
export function urlWithFilter(href: string, expr: string): string {
  const u = new URL(href);
  if (expr.trim() === "") u.searchParams.delete("filter");
  else u.searchParams.set("filter", expr);
  // Never keep a token in the address (the hub moves it to a cookie).
  u.searchParams.delete("token");
  return u.pathname + u.search + u.hash;
}
