//! The one JSON object a FlexVolume driver prints: `{"status": …, "message": …, "capabilities": …}`.
//!
//! Kubelet reads the driver's stdout *and stderr together* and unmarshals them as one JSON
//! document, so this is the only thing a driver call may ever print. Serialising through serde
//! means any message — paths, vault error text, quotes, backslashes, newlines — stays valid JSON
//! (the original driver escaped by hand and broke on backslashes).

use serde::Serialize;

/// Outcome of a driver call, as kubelet spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// The call did what was asked.
    Success,
    /// The call failed; `message` says why.
    Failure,
    /// The driver does not implement the call; kubelet stops asking and uses its default.
    #[serde(rename = "Not supported")]
    NotSupported,
}

/// What the driver can do, answered to `init`. Only `attach` is sent: kubelet keeps its defaults
/// for the rest, as it did for the original driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// False: there is no device to attach; everything happens in `mount`.
    pub attach: bool,
}

/// The reply to one driver call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverStatus {
    /// The outcome.
    pub status: Status,
    /// Why it failed, or a short note on what was done. Never holds a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Capabilities (answer to `init` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
}

impl DriverStatus {
    /// A success with an optional note.
    pub fn success(message: Option<String>) -> Self {
        Self {
            status: Status::Success,
            message,
            capabilities: None,
        }
    }

    /// The answer to `init`: success, no attach step.
    pub fn initialized() -> Self {
        Self {
            status: Status::Success,
            message: None,
            capabilities: Some(Capabilities { attach: false }),
        }
    }

    /// A failure with its reason.
    pub fn failure(message: impl Into<String>) -> Self {
        Self {
            status: Status::Failure,
            message: Some(message.into()),
            capabilities: None,
        }
    }

    /// A failure rendered from an error and its whole source chain (`keyvol_core::report::chain`).
    pub fn failure_from(err: &(dyn std::error::Error + 'static)) -> Self {
        Self::failure(keyvol_core::report::chain(err))
    }

    /// The answer to a call the driver does not implement.
    pub fn not_supported(command: &str) -> Self {
        Self {
            status: Status::NotSupported,
            message: Some(format!(
                "the azure/kv driver does not implement {command:?} (it implements init, mount and unmount)"
            )),
            capabilities: None,
        }
    }

    /// Exit status of the process: 0 for success and "not supported", 1 for failure. Kubelet
    /// treats a non-zero exit with a successful status as a driver bug, so the two must agree.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            Status::Success | Status::NotSupported => 0,
            Status::Failure => 1,
        }
    }

    /// The single line to print: the JSON object and a newline.
    pub fn to_line(&self) -> String {
        // Serialising this struct cannot fail (strings, bools and enums only); the fallback keeps
        // the one-JSON-object promise even so.
        let mut line = serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"status":"Failure","message":"failed to encode the driver status"}"#.to_owned()
        });
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_answers_success_without_attach() {
        assert_eq!(
            DriverStatus::initialized().to_line(),
            "{\"status\":\"Success\",\"capabilities\":{\"attach\":false}}\n"
        );
    }

    #[test]
    fn not_supported_is_spelled_as_kubelet_expects_and_exits_zero() {
        let s = DriverStatus::not_supported("getvolumename");
        let v: serde_json::Value = serde_json::from_str(&s.to_line()).expect("json");
        assert_eq!(v["status"], "Not supported");
        assert!(
            v["message"]
                .as_str()
                .expect("message")
                .contains("getvolumename")
        );
        assert_eq!(s.exit_code(), 0);
    }

    #[test]
    fn failure_messages_with_quotes_backslashes_and_newlines_stay_one_json_line() {
        let s = DriverStatus::failure("bad \"value\" at C:\\path\nsecond line");
        let line = s.to_line();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["message"], "bad \"value\" at C:\\path\nsecond line");
        assert_eq!(s.exit_code(), 1);
    }

    #[test]
    fn the_source_chain_is_rendered_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("failed to mount")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("permission denied"));
        assert_eq!(
            DriverStatus::failure_from(&e).message.as_deref(),
            Some("failed to mount: permission denied")
        );
    }
}
