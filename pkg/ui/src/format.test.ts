import { expect, test } from "vitest";
import { bodyView, endpointLabel, fmtDuration, hexDump, pcapURL, statusClass } from "./format";
import { entry } from "./testentries";

test("bodyView: JSON pretty, text as is, binary as hex, truncation said", () => {
  expect(bodyView({ size: 13, data: '{"a":[1,2]}' }, "application/json")).toEqual({ kind: "json", text: '{\n  "a": [\n    1,\n    2\n  ]\n}', notes: [] });
  expect(bodyView({ size: 5, data: "hello" })).toEqual({ kind: "text", text: "hello", notes: [] });
  expect(bodyView({ size: 100, data: '{"a":', truncated: true })).toEqual({ kind: "text", text: '{"a":', notes: ["truncated: 5 of 100 bytes captured"] });
  expect(bodyView({ size: 3, encoding: "base64", data: "AAH/" })).toEqual({
    kind: "hex",
    text: "00000000  00 01 ff                                          |...|",
    notes: [],
  });
  expect(bodyView({ size: 9, data: "x", decoded: "gzip" }).notes).toEqual(["gzip decoded"]);
  expect(bodyView({ size: 0 }).kind).toBe("empty");
  expect(bodyView(undefined).kind).toBe("empty");
});

test("hexDump shows 16 bytes a line with their ASCII", () => {
  const b = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x");
  expect(hexDump(b).split("\n")).toEqual([
    "00000000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  |GET / HTTP/1.1..|",
    "00000010  48 6f 73 74 3a 20 78                              |Host: x|",
  ]);
});

test("pcapURL names the flow as the hub's parsePcapQuery reads it", () => {
  expect(pcapURL(entry())).toBe("v1/pcap?flow=fca27aeec40c3afd&transport=tcp&a=10.0.0.1%3A33424&b=10.0.0.2%3A8080");
  const dns = entry({ proto: "dns", src: { ip: "fd00::1", port: 5353 }, dst: { ip: "fd00::53", port: 53 }, dns: { transport: "udp", qname: "x", qtype: "A" } });
  expect(pcapURL(dns)).toBe("v1/pcap?flow=fca27aeec40c3afd&transport=udp&a=%5Bfd00%3A%3A1%5D%3A5353&b=%5Bfd00%3A%3A53%5D%3A53");
});

test("statusClass and fmtDuration", () => {
  expect(["200", "301", "404", "500"].map((s) => statusClass(entry({ status: s })))).toEqual(["ok", "redirect", "client", "error"]);
  expect([999, 1500, 25_000, 2_500_000].map(fmtDuration)).toEqual(["999µs", "1.50ms", "25.0ms", "2.50s"]);
});

test("endpointLabel: pod, else service, else address", () => {
  expect(endpointLabel({ ip: "10.0.0.5", port: 1, namespace: "demo", pod: "cart-1", service: "cart" })).toBe("demo/cart-1");
  expect(endpointLabel({ ip: "10.96.0.9", port: 8080, namespace: "demo", service: "cart" })).toBe("demo/cart");
  expect(endpointLabel({ ip: "fd00::1", port: 53 })).toBe("[fd00::1]:53");
});
