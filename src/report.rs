//! Per-task output, diffs and the recap, as text or JSON lines.
