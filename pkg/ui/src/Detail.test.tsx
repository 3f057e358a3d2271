import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, expect, test, vi } from "vitest";
import { Detail } from "./Detail";
import { entry } from "./testentries";

afterEach(cleanup);

test("the traced processes of a TLS entry show at their ends, and filter on a click", () => {
  const onFilter = vi.fn();
  const e = entry({
    tls: true,
    source: "ebpf_tls",
    src: { ip: "10.0.0.1", port: 40000, pod: "client", namespace: "shop", pid: 4242, process: "curl" },
    dst: { ip: "10.0.0.2", port: 8443, pod: "web", namespace: "shop", process: "nginx", pid: 7 },
  });
  render(<Detail e={e} onFilter={onFilter} onClose={() => {}} />);
  expect(screen.getByTestId("src-process").textContent).toBe("process curl (pid 4242)");
  expect(screen.getByTestId("dst-process").textContent).toBe("process nginx (pid 7)");
  fireEvent.click(screen.getByText("curl"));
  expect(onFilter).toHaveBeenCalledWith('src.process == "curl"');
});

test("an entry without processes shows none", () => {
  render(<Detail e={entry()} onFilter={() => {}} onClose={() => {}} />);
  expect(screen.queryByTestId("src-process")).toBeNull();
  expect(screen.queryByTestId("dst-process")).toBeNull();
});
