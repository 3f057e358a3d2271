import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { afterEach, expect, test, vi } from "vitest";
import { parseFilterError } from "./filter";
import { caretLines, FilterBox, type FilterError } from "./FilterBox";

afterEach(cleanup);

function Harness({ onSubmit, error = null, applied = "" }: { onSubmit(e: string): void; error?: FilterError | null; applied?: string }) {
  const [draft, setDraft] = useState(error?.expr ?? applied);
  return <FilterBox draft={draft} applied={applied} error={error} pending={false} onDraft={setDraft} onSubmit={onSubmit} />;
}

test("Enter submits the text", () => {
  const onSubmit = vi.fn();
  render(<Harness onSubmit={onSubmit} />);
  const input = screen.getByTestId("filter-input") as HTMLInputElement;
  fireEvent.change(input, { target: { value: 'proto == "dns"' } });
  fireEvent.submit(input.form!);
  expect(onSubmit).toHaveBeenCalledWith('proto == "dns"');
});

test("an error shows inline with a caret at its position, and selects it", () => {
  const expr = 'proto == "http" && stauts == "500"';
  const error = { expr, issues: parseFilterError(expr, "filter: 1:20: undeclared reference to 'stauts'") };
  render(<Harness onSubmit={() => {}} error={error} applied='proto == "http"' />);
  const box = screen.getByTestId("filter-error");
  expect(box.textContent).toContain("1:20");
  expect(box.textContent).toContain("undeclared reference to 'stauts'");
  expect(box.querySelector("pre")!.textContent).toBe(`${expr}\n${" ".repeat(19)}^`);
  expect(box.textContent).toContain('still showing: proto == "http"');
  const input = screen.getByTestId("filter-input") as HTMLInputElement;
  expect(input.getAttribute("aria-invalid")).toBe("true");
  expect(document.activeElement).toBe(input);
  expect([input.selectionStart, input.selectionEnd]).toEqual([19, 20]);
});

test("Escape goes back to the applied filter; Clear submits none", () => {
  const onSubmit = vi.fn();
  render(<Harness onSubmit={onSubmit} applied='proto == "dns"' />);
  const input = screen.getByTestId("filter-input") as HTMLInputElement;
  fireEvent.change(input, { target: { value: "junk" } });
  expect(input.className).toBe("dirty");
  fireEvent.keyDown(input, { key: "Escape" });
  expect(input.value).toBe('proto == "dns"');
  fireEvent.click(screen.getByTestId("filter-clear"));
  expect(onSubmit).toHaveBeenCalledWith("");
  expect(input.value).toBe("");
});

test("caretLines points at the column of the issue's line, tabs as spaces", () => {
  expect(caretLines("a &&\n\tbb", { line: 2, column: 2, message: "", offset: 6 })).toBe(" bb\n ^");
});
