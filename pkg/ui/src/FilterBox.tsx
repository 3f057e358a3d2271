import { useEffect, useRef } from "react";
import type { FilterIssue } from "./filter";

/** FilterError is the hub's answer to a filter it refused. */
export interface FilterError {
  expr: string;
  issues: FilterIssue[];
}

export interface FilterBoxProps {
  /** The text in the box. */
  draft: string;
  /** The filter the hub applies now. */
  applied: string;
  /** The hub's objections to the last filter sent, if it refused it. */
  error: FilterError | null;
  pending: boolean;
  onDraft(text: string): void;
  onSubmit(expr: string): void;
}

/** FilterBox edits the CEL filter; the hub compiles it, and its errors
 * show under the box with a caret at each position. */
export function FilterBox({ draft, applied, error, pending, onDraft, onSubmit }: FilterBoxProps) {
  const issues = error?.issues ?? null;
  const input = useRef<HTMLInputElement>(null);
  // Put the cursor where the first problem is.
  useEffect(() => {
    const el = input.current;
    if (!el || !error?.issues.length || el.value !== error.expr) return;
    el.focus();
    const at = error.issues[0].offset;
    el.setSelectionRange(at, Math.min(at + 1, el.value.length));
  }, [error]);

  const dirty = draft !== applied;
  return (
    <form
      className="filter"
      role="search"
      onSubmit={(ev) => {
        ev.preventDefault();
        onSubmit(draft);
      }}
    >
      <div className="filter-row">
        <input
          ref={input}
          data-testid="filter-input"
          aria-label="CEL filter"
          aria-invalid={issues ? true : undefined}
          className={issues ? "bad" : dirty ? "dirty" : ""}
          spellCheck={false}
          autoComplete="off"
          placeholder='CEL filter, e.g. proto == "http" && int(status) >= 500'
          value={draft}
          onChange={(ev) => onDraft(ev.target.value)}
          onKeyDown={(ev) => {
            if (ev.key === "Escape") onDraft(applied);
          }}
        />
        <button type="submit" data-testid="filter-apply" disabled={pending}>
          Apply
        </button>
        {applied !== "" && (
          <button
            type="button"
            data-testid="filter-clear"
            onClick={() => {
              onDraft("");
              onSubmit("");
            }}
          >
            Clear
          </button>
        )}
      </div>
      {issues && (
        <div className="filter-error" role="alert" data-testid="filter-error">
          {issues.map((is, i) => (
            <div key={i}>
              <pre className="caret">
                {caretLines(error!.expr, is)}
              </pre>
              <span className="where">
                {is.line}:{is.column}
              </span>{" "}
              {is.message}
            </div>
          ))}
          {applied !== "" ? <div className="note">still showing: {applied}</div> : null}
        </div>
      )}
    </form>
  );
}

/** caretLines shows the source line of an issue and a caret under it. */
export function caretLines(expr: string, is: FilterIssue): string {
  const lines = expr.split("\n");
  const src = (lines[is.line - 1] ?? "").replace(/\t/g, " ");
  const before = [...src].slice(0, Math.max(0, is.column - 1)).length;
  return `${src}\n${" ".repeat(before)}^`;
}
