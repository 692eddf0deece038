//! Source locations and user-facing error reports.
//!
//! Every error caused by user input (YAML, templates, module arguments) carries a
//! [`Span`], and [`Diagnostic`] renders it as `file:line:col`, the source line and
//! a caret under the column, so the user sees what to fix without opening the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A loaded input file. Spans share it so that a report can show the offending line.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            path: path.into(),
            text: text.into(),
        })
    }

    /// Returns line `line` (1-based) without its line terminator.
    pub fn line_text(&self, line: usize) -> Option<&str> {
        self.text
            .lines()
            .nth(line.checked_sub(1)?)
            .map(|l| l.trim_end_matches('\r'))
    }
}

/// A position in a source file: 1-based line and column (in characters).
#[derive(Clone)]
pub struct Span {
    pub file: Arc<SourceFile>,
    pub line: usize,
    pub col: usize,
}

impl Span {
    pub fn new(file: Arc<SourceFile>, line: usize, col: usize) -> Span {
        Span { file, line, col }
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Returns the span moved by `lines` and `cols`, for positions inside a scalar.
    pub fn offset(&self, lines: usize, col: usize) -> Span {
        if lines == 0 {
            Span::new(self.file.clone(), self.line, self.col + col)
        } else {
            Span::new(self.file.clone(), self.line + lines, col + 1)
        }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.path.display(), self.line, self.col)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.path.display(), self.line, self.col)
    }
}

impl PartialEq for Span {
    fn eq(&self, other: &Span) -> bool {
        self.file.path == other.file.path && self.line == other.line && self.col == other.col
    }
}

/// A user error with an optional location and an optional hint on how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub message: String,
    pub span: Option<Span>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span: None,
            help: None,
        }
    }

    pub fn at(span: &Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span: Some(span.clone()),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Renders the report as plain text: the message, the location, the line and a caret.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(span) = &self.span {
            out.push_str(&format!("  --> {span}\n"));
            if let Some(line) = span.file.line_text(span.line) {
                let number = span.line.to_string();
                let pad = " ".repeat(number.len());
                let caret_pad: String = line
                    .chars()
                    .take(span.col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                out.push_str(&format!(
                    "{pad} |\n{number} | {line}\n{pad} | {caret_pad}^\n"
                ));
            }
        }
        if let Some(help) = &self.help {
            out.push_str(&format!("  = help: {help}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.span {
            Some(span) => write!(f, "{span}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics at once: validation reports every error it finds, not only the first.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(Diagnostic::render)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.render())
    }
}

impl std::error::Error for Diagnostics {}

/// Returns the candidate closest to `name`, for "did you mean" hints.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shows_line_and_caret() {
        let file = SourceFile::new(
            "site.yaml",
            "- hosts: all\n  tasks:\n    - apt: nmae=nginx\n",
        );
        let diagnostic = Diagnostic::at(
            &Span::new(file, 3, 12),
            "unknown argument `nmae` for module `apt`",
        )
        .with_help("did you mean `name`?");
        assert_eq!(
            diagnostic.render(),
            "error: unknown argument `nmae` for module `apt`\n  --> site.yaml:3:12\n  |\n3 |     - apt: nmae=nginx\n  |            ^\n  = help: did you mean `name`?\n"
        );
    }

    #[test]
    fn did_you_mean_picks_closest() {
        assert_eq!(
            did_you_mean("sevice", ["service", "systemd", "shell"]),
            Some("service")
        );
        assert_eq!(did_you_mean("zzz", ["service", "systemd"]), None);
    }
}
