//! Logging for every subcommand except FlexVolume (whose stdout and stderr are its reply):
//! klog-style verbosity, plain text on stderr (colour only on a terminal, never with
//! `NO_COLOR`), or JSON lines with stable keys under `--log-format-json`.
//!
//! Levels: at the default `-v=0` keyvol logs one info line per publish, unpublish and rotation
//! plus start-up and warnings, as the upstream driver does; `-v=2`…`4` add keyvol's debug
//! lines; `-v=5` adds trace and other crates' debug output. Third-party crates stay at `warn`
//! below 5 because their debug output can carry request details keyvol does not control.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The logging flags both binaries take on every subcommand (klog's names, as upstream).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct LogArgs {
    /// Log verbosity, klog-style: 0 one line per volume operation plus warnings, 2–4 debug,
    /// 5 trace including other libraries.
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    pub verbosity: u8,
    /// Log as JSON lines (keys ts, level, msg, then fields) instead of text.
    #[arg(long, global = true)]
    pub log_format_json: bool,
}

/// The filter directives for a klog-style verbosity (`keyvol` covers every `keyvol_*` crate).
fn directives(verbosity: u8) -> &'static str {
    match verbosity {
        0 | 1 => "warn,keyvol=info",
        2..=4 => "warn,keyvol=debug",
        _ => "debug,keyvol=trace",
    }
}

/// The filter for a klog-style verbosity.
fn filter(verbosity: u8) -> tracing_subscriber::EnvFilter {
    // Every directive above is valid (a test parses them); fall back to warnings only if that
    // ever changes.
    tracing_subscriber::EnvFilter::try_new(directives(verbosity))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
}

/// Whether text logs may carry colour escapes: only when stderr is a terminal and `NO_COLOR`
/// is unset or empty (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Installs the process's logger.
pub fn init(verbosity: u8, json: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity))
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        builder.event_format(JsonLines).init();
    } else {
        builder
            .with_ansi(use_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .init();
    }
}

/// Logs to the file at `path` (appended, plain text) at the default verbosity and never to
/// stderr: for FlexVolume calls, whose stdout and stderr are kubelet's reply. Does nothing when
/// the file cannot be opened.
pub fn init_file(path: &std::path::Path) {
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(0))
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// One JSON object per line: `ts` (RFC 3339, UTC, milliseconds), `level` (lower case), `msg`,
/// then the event's fields under their own names. A field named like one of the three fixed
/// keys is written as `field.<name>` so the fixed keys stay stable.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let line = json_line(
            &humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            event.metadata().level(),
            |visitor| event.record(visitor),
        );
        writeln!(writer, "{line}")
    }
}

/// Builds one JSON log line from a timestamp, a level and whatever records the fields.
fn json_line(ts: &str, level: &tracing::Level, record: impl FnOnce(&mut JsonFields)) -> String {
    let mut fields = JsonFields::default();
    record(&mut fields);
    // Written by hand so the fixed keys come first whatever the JSON map's key order.
    let mut line = String::with_capacity(128);
    line.push_str("{\"ts\":");
    line.push_str(&serde_json::Value::from(ts).to_string());
    line.push_str(",\"level\":");
    line.push_str(&serde_json::Value::from(level.as_str().to_ascii_lowercase()).to_string());
    line.push_str(",\"msg\":");
    line.push_str(&serde_json::Value::from(fields.message.unwrap_or_default()).to_string());
    for (key, value) in fields.fields {
        let key = if matches!(key.as_str(), "ts" | "level" | "msg") {
            format!("field.{key}")
        } else {
            key
        };
        line.push(',');
        line.push_str(&serde_json::Value::from(key).to_string());
        line.push(':');
        line.push_str(&value.to_string());
    }
    line.push('}');
    line
}

/// Collects an event's message and fields as JSON values.
#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    fields: Vec<(String, serde_json::Value)>,
}

impl JsonFields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn default_verbosity_shows_keyvol_info_and_other_crates_warnings_only() {
        assert_eq!(directives(0), "warn,keyvol=info");
        assert_eq!(directives(2), "warn,keyvol=debug");
        assert_eq!(directives(5), "debug,keyvol=trace");
        for v in 0..=9 {
            assert!(tracing_subscriber::EnvFilter::try_new(directives(v)).is_ok());
            let _ = filter(v);
        }
    }

    #[test]
    fn json_lines_have_stable_keys_first_and_fields_after() {
        // Fields are recorded through a real event so the visitor sees what tracing hands it.
        let line = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = line.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Capture(sink.clone()))
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                pod = "web-0",
                namespace = "prod",
                files = 3u64,
                msg = "x",
                "node publish volume"
            );
        });
        let text = line.lock().unwrap().clone();
        let value: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(value["level"], "info");
        assert_eq!(value["msg"], "node publish volume");
        assert_eq!(value["pod"], "web-0");
        assert_eq!(value["namespace"], "prod");
        assert_eq!(value["files"], 3);
        assert_eq!(value["field.msg"], "x");
        assert!(humantime::parse_rfc3339(value["ts"].as_str().unwrap()).is_ok());
        assert!(text.starts_with("{\"ts\":\""), "{text}");
        let level_at = text.find("\"level\"").unwrap();
        let msg_at = text.find("\"msg\"").unwrap();
        let pod_at = text.find("\"pod\"").unwrap();
        assert!(level_at < msg_at && msg_at < pod_at, "{text}");
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<String>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(buf));
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
