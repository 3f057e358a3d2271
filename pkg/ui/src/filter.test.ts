import { describe, expect, test } from "vitest";
import { addClause, celString, clause, filterFromURL, parseFilterError, positionOffset, urlWithFilter } from "./filter";

describe("parseFilterError", () => {
  test.each([
    {
      name: "one issue, as pkg/filter writes it",
      expr: 'proto == "http" && stauts == "500"',
      msg: "filter: 1:20: undeclared reference to 'stauts'",
      want: [{ line: 1, column: 20, message: "undeclared reference to 'stauts'", offset: 19 }],
    },
    {
      name: "two issues",
      expr: "a ==\nb",
      msg: "filter: 1:5: Syntax error: mismatched input; 2:1: undeclared reference to 'b'",
      want: [
        { line: 1, column: 5, message: "Syntax error: mismatched input", offset: 4 },
        { line: 2, column: 1, message: "undeclared reference to 'b'", offset: 5 },
      ],
    },
    {
      name: "a message that mentions a position-like text",
      expr: "x",
      msg: "filter: 1:1: found 'a 2:3: b' in text",
      want: [{ line: 1, column: 1, message: "found 'a 2:3: b' in text", offset: 0 }],
    },
    {
      name: "no position",
      expr: "x",
      msg: "wire: bad filter message",
      want: [{ line: 1, column: 1, message: "wire: bad filter message", offset: 0 }],
    },
  ])("$name", ({ expr, msg, want }) => {
    expect(parseFilterError(expr, msg)).toEqual(want);
  });
});

test("positionOffset counts characters, not UTF-16 units, and clamps", () => {
  expect(positionOffset('"🦈" == x', 1, 5)).toBe(5); // the emoji is one column, two units
  expect(positionOffset("ab\ncd", 2, 2)).toBe(4);
  expect(positionOffset("ab", 1, 99)).toBe(2);
  expect(positionOffset("ab", 5, 1)).toBe(2);
});

test("celString escapes what CEL needs escaped", () => {
  expect(celString('a"b\\c\nd\u0001')).toBe('"a\\"b\\\\c\\nd\\u0001"');
});

describe("addClause", () => {
  test.each([
    { expr: "", c: clause("proto", "dns"), want: 'proto == "dns"' },
    { expr: '  proto == "dns" ', c: clause("status", "NXDOMAIN"), want: 'proto == "dns" && status == "NXDOMAIN"' },
    { expr: 'proto == "dns" || proto == "http"', c: clause("src.port", 53), want: '(proto == "dns" || proto == "http") && src.port == 53' },
    { expr: 'path == "a||b"', c: clause("tls", true), want: 'path == "a||b" && tls == true' },
    { expr: 'x ? a : b', c: "c == 1", want: "(x ? a : b) && c == 1" },
    { expr: '(a || b) && proto == "dns"', c: 'proto == "dns"', want: '(a || b) && proto == "dns"' },
    { expr: 'path == "x && proto == \\"dns\\""', c: 'proto == "dns"', want: 'path == "x && proto == \\"dns\\"" && proto == "dns"' },
  ])("$expr + $c", ({ expr, c, want }) => {
    expect(addClause(expr, c)).toBe(want);
  });
});

test("the filter lives in the URL, the token never does", () => {
  expect(filterFromURL('?filter=proto+%3D%3D+"dns"&keep=5')).toBe('proto == "dns"');
  expect(filterFromURL("?keep=5")).toBe("");
  expect(urlWithFilter("http://h:1/?keep=5&token=secret", 'proto == "dns"')).toBe("/?keep=5&filter=proto+%3D%3D+%22dns%22");
  expect(urlWithFilter("http://h:1/?filter=x#top", " ")).toBe("/#top");
});
