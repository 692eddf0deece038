use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use console::{style, Term};
use indicatif::{ProgressBar, ProgressStyle};

use super::{Event, HostResult, Redactor, Reporter, Stats, Status};
use crate::modules::Diff;

/// Ansible-like text output: a header per play and task, a line per host, a recap.
pub struct TextReporter {
    redactor: std::sync::Arc<Redactor>,
    show_diff: bool,
    out: Mutex<Box<dyn Write + Send>>,
    progress: Mutex<Option<ProgressBar>>,
    interactive: bool,
}

impl TextReporter {
    pub fn new(redactor: std::sync::Arc<Redactor>, show_diff: bool) -> TextReporter {
        let interactive = Term::stdout().is_term();
        TextReporter {
            redactor,
            show_diff,
            out: Mutex::new(Box::new(std::io::stdout())),
            progress: Mutex::new(None),
            interactive,
        }
    }

    /// Writes to `out` instead of standard output, without colours or progress bars.
    pub fn with_writer(
        redactor: std::sync::Arc<Redactor>,
        show_diff: bool,
        out: Box<dyn Write + Send>,
    ) -> TextReporter {
        TextReporter {
            redactor,
            show_diff,
            out: Mutex::new(out),
            progress: Mutex::new(None),
            interactive: false,
        }
    }

    fn write(&self, text: &str) {
        let bar = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        match bar.as_ref() {
            Some(bar) => bar.suspend(|| {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }),
            None => {
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
        }
    }

    fn paint(&self, text: &str, status: Status) -> String {
        if !self.interactive {
            return text.to_string();
        }
        match status {
            Status::Ok => style(text).green().to_string(),
            Status::Changed => style(text).yellow().to_string(),
            Status::Failed | Status::Unreachable => style(text).red().bold().to_string(),
            Status::Skipped => style(text).cyan().to_string(),
        }
    }

    fn header(title: &str) -> String {
        let width = 78usize.saturating_sub(title.chars().count() + 1).max(3);
        format!("\n{title} {}\n", "*".repeat(width))
    }

    fn render_result(&self, result: &HostResult) -> String {
        let label = match (result.status, result.ignored) {
            (Status::Ok, _) => "ok",
            (Status::Changed, _) => "changed",
            (Status::Failed, true) => "failed (ignored)",
            (Status::Failed, false) => "failed",
            (Status::Skipped, _) => "skipping",
            (Status::Unreachable, _) => "unreachable",
        };
        let item = result
            .item
            .as_ref()
            .map(|i| format!(" => (item={i})"))
            .unwrap_or_default();
        // Every line gives the reason: what changed, why nothing changed, or why it failed.
        let message = if result.message.is_empty() {
            String::new()
        } else {
            format!(" {}", result.message)
        };
        let mut line = format!(
            "{}{item}{message}\n",
            self.paint(&format!("{label}: [{}]", result.host), result.status)
        );
        if self.show_diff {
            for diff in &result.diffs {
                line.push_str(&self.render_diff(diff));
            }
        }
        line
    }

    fn render_diff(&self, diff: &Diff) -> String {
        let mut out = String::new();
        let text_diff = similar::TextDiff::from_lines(&diff.before, &diff.after);
        out.push_str(&format!(
            "--- before: {}\n+++ after: {}\n",
            diff.header, diff.header
        ));
        for hunk in text_diff.unified_diff().context_radius(3).iter_hunks() {
            out.push_str(&format!("{}\n", hunk.header()));
            for change in hunk.iter_changes() {
                let (sign, status) = match change.tag() {
                    similar::ChangeTag::Delete => ("-", Some(Status::Failed)),
                    similar::ChangeTag::Insert => ("+", Some(Status::Ok)),
                    similar::ChangeTag::Equal => (" ", None),
                };
                let mut line = format!("{sign}{}", change.value());
                if !line.ends_with('\n') {
                    line.push_str("\n\\ No newline at end of file\n");
                }
                match status {
                    Some(status) => out.push_str(&self.paint(&line, status)),
                    None => out.push_str(&line),
                }
            }
        }
        out.push('\n');
        out
    }
}

impl Reporter for TextReporter {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::PlayStart { name, hosts } => {
                let _ = hosts;
                self.write(&Self::header(&format!(
                    "PLAY [{}]",
                    self.redactor.redact(name)
                )));
            }
            Event::TaskStart { name, .. } => {
                let name = self.redactor.redact(name);
                let title = if name.starts_with("RUNNING HANDLER [") {
                    name
                } else {
                    format!("TASK [{name}]")
                };
                self.write(&Self::header(&title));
            }
            Event::Result(result) => {
                let result = self.redactor.redact_result(result);
                self.write(&self.render_result(&result));
            }
            Event::Warning(message) => {
                let text = format!("[WARNING]: {}\n", self.redactor.redact(message));
                let text = if self.interactive {
                    style(text).magenta().to_string()
                } else {
                    text
                };
                self.write(&text);
            }
            Event::Recap(stats) => self.write(&render_recap(stats)),
        }
    }

    fn progress(&self, done: usize, total: usize) {
        if !self.interactive || total < 1 {
            return;
        }
        let mut guard = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let bar = guard.get_or_insert_with(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(bar_style) =
                ProgressStyle::with_template("{spinner} {pos}/{len} hosts done {elapsed}")
            {
                bar.set_style(bar_style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }

    fn finish_progress(&self) {
        if let Some(bar) = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            bar.finish_and_clear();
        }
    }
}

/// Renders the PLAY RECAP block.
pub fn render_recap(stats: &BTreeMap<String, Stats>) -> String {
    let mut out = TextReporter::header("PLAY RECAP");
    let width = stats.keys().map(|h| h.chars().count()).max().unwrap_or(0);
    for (host, s) in stats {
        out.push_str(&format!(
            "{host:<width$} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={}\n",
            s.ok, s.changed, s.unreachable, s.failed, s.skipped, s.rescued, s.ignored
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn result_line_and_diff() {
        let buffer = Buffer::default();
        let redactor = Arc::new(Redactor::default());
        redactor.add("s3cret-pass");
        let reporter = TextReporter::with_writer(redactor, true, Box::new(buffer.clone()));
        let result = HostResult {
            host: "h1".into(),
            status: Status::Changed,
            message: "write /etc/app.conf with s3cret-pass".into(),
            item: None,
            diffs: vec![Diff {
                header: "/etc/app.conf".into(),
                before: "a\nb\n".into(),
                after: "a\nc\n".into(),
            }],
            ignored: false,
            check_mode: false,
        };
        reporter.event(Event::Result(&result));
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "changed: [h1] write /etc/app.conf with ********\n--- before: /etc/app.conf\n+++ after: /etc/app.conf\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n\n"
        );
    }

    #[test]
    fn recap_aligns_hosts() {
        let mut stats = BTreeMap::new();
        stats.insert(
            "h1".to_string(),
            Stats {
                ok: 3,
                changed: 1,
                ..Stats::default()
            },
        );
        stats.insert(
            "web-10".to_string(),
            Stats {
                failed: 1,
                ..Stats::default()
            },
        );
        let recap = render_recap(&stats);
        assert!(
            recap.contains("\nh1     : ok=3    changed=1    unreachable=0    failed=0"),
            "{recap}"
        );
        assert!(
            recap.contains("\nweb-10 : ok=0    changed=0    unreachable=0    failed=1"),
            "{recap}"
        );
    }
}
