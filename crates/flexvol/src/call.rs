//! A driver call as kubelet makes it — `<driver> <command> [args…]` — parsed into a typed value.
//!
//! Kubelet (`pkg/volume/flexvolume/driver-call.go`) sends `init`, `mount <dir> <json options>`,
//! `unmount <dir>`, and for attachable drivers a dozen more (`attach`, `getvolumename`, …). This
//! driver implements the first three and answers "Not supported" to every other command, which
//! makes kubelet stop calling it and fall back to its defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use keyvol_azure::objects::{key_shown, shown};
use serde_json::Value;

/// One parsed driver call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverCall {
    /// `init`: report capabilities.
    Init,
    /// `mount <dir> <json options>`.
    Mount {
        /// The volume directory kubelet wants filled.
        target: PathBuf,
        /// The options map, every value a string as kubelet sends it (secretRef values are
        /// among them, base64-encoded: never print this map).
        options: BTreeMap<String, String>,
    },
    /// `unmount <dir>`.
    Unmount {
        /// The volume directory.
        target: PathBuf,
    },
    /// Any other command.
    Unsupported {
        /// The command as given.
        command: String,
    },
}

/// Why a call's arguments are unusable. Messages name arguments and option keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No command at all.
    #[error("no driver command given (expected init, mount or unmount)")]
    NoCommand,
    /// A required argument is missing.
    #[error("{command}: missing the {what} argument")]
    MissingArgument {
        /// The command.
        command: &'static str,
        /// Which argument.
        what: &'static str,
    },
    /// More arguments than the command takes.
    #[error("{command}: takes {expected} argument(s), got {got}")]
    ExtraArguments {
        /// The command.
        command: &'static str,
        /// How many it takes.
        expected: usize,
        /// How many came.
        got: usize,
    },
    /// The volume directory is not an absolute path.
    #[error("{command}: the volume directory {path} is not an absolute path")]
    RelativeTarget {
        /// The command.
        command: &'static str,
        /// The path given, quoted (and cut when long).
        path: String,
    },
    /// The options argument is not JSON.
    #[error("mount: the options argument is not valid JSON ({reason})")]
    OptionsNotJson {
        /// The parser's position report (it never quotes the input).
        reason: String,
    },
    /// The options argument is JSON but not an object.
    #[error("mount: the options argument must be a JSON object of strings")]
    OptionsNotObject,
    /// An option's value is not a string.
    #[error("mount: option {key} must be a string")]
    OptionNotString {
        /// The option key.
        key: String,
    },
}

impl DriverCall {
    /// Parses `args`: the command followed by its arguments (argv without the program name).
    pub fn parse(args: &[String]) -> Result<Self, CallError> {
        let Some((command, rest)) = args.split_first() else {
            return Err(CallError::NoCommand);
        };
        match command.as_str() {
            "init" => Ok(DriverCall::Init),
            "mount" => {
                let target = target_arg("mount", rest.first())?;
                let options = rest.get(1).ok_or(CallError::MissingArgument {
                    command: "mount",
                    what: "JSON options",
                })?;
                if rest.len() > 2 {
                    return Err(CallError::ExtraArguments {
                        command: "mount",
                        expected: 2,
                        got: rest.len(),
                    });
                }
                Ok(DriverCall::Mount {
                    target,
                    options: parse_options(options)?,
                })
            }
            "unmount" => {
                let target = target_arg("unmount", rest.first())?;
                if rest.len() > 1 {
                    return Err(CallError::ExtraArguments {
                        command: "unmount",
                        expected: 1,
                        got: rest.len(),
                    });
                }
                Ok(DriverCall::Unmount { target })
            }
            other => Ok(DriverCall::Unsupported {
                command: other.to_owned(),
            }),
        }
    }

    /// The command's name, for logs.
    pub fn name(&self) -> &str {
        match self {
            DriverCall::Init => "init",
            DriverCall::Mount { .. } => "mount",
            DriverCall::Unmount { .. } => "unmount",
            DriverCall::Unsupported { command } => command,
        }
    }
}

fn target_arg(command: &'static str, arg: Option<&String>) -> Result<PathBuf, CallError> {
    let arg = arg.ok_or(CallError::MissingArgument {
        command,
        what: "volume directory",
    })?;
    let path = PathBuf::from(arg);
    if !path.is_absolute() {
        return Err(CallError::RelativeTarget {
            command,
            path: shown(arg),
        });
    }
    Ok(path)
}

/// Parses kubelet's options JSON. Values are strings in everything kubelet sends; anything else
/// is refused by key, without echoing the value (it may be a credential).
fn parse_options(text: &str) -> Result<BTreeMap<String, String>, CallError> {
    let value: Value = serde_json::from_str(text).map_err(|e| CallError::OptionsNotJson {
        reason: format!("line {} column {}", e.line(), e.column()),
    })?;
    let Value::Object(map) = value else {
        return Err(CallError::OptionsNotObject);
    };
    map.into_iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key, s)),
            _ => Err(CallError::OptionNotString {
                key: key_shown(&key),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubelets_three_calls_parse() {
        assert_eq!(DriverCall::parse(&args(&["init"])), Ok(DriverCall::Init));
        assert_eq!(
            DriverCall::parse(&args(&[
                "unmount",
                "/var/lib/kubelet/pods/u/volumes/azure~kv/v"
            ])),
            Ok(DriverCall::Unmount {
                target: "/var/lib/kubelet/pods/u/volumes/azure~kv/v".into()
            })
        );
        let call = DriverCall::parse(&args(&[
            "mount",
            "/mnt/v",
            r#"{"keyvaultname":"kv","kubernetes.io/readwrite":"ro"}"#,
        ]))
        .expect("parses");
        let DriverCall::Mount { target, options } = call else {
            panic!("not a mount");
        };
        assert_eq!(target, PathBuf::from("/mnt/v"));
        assert_eq!(options["keyvaultname"], "kv");
        assert_eq!(options.len(), 2);
    }

    #[test]
    fn every_other_command_is_unsupported() {
        for c in [
            "getvolumename",
            "attach",
            "waitforattach",
            "expandvolume",
            "help",
            "--help",
        ] {
            assert_eq!(
                DriverCall::parse(&args(&[c, "x"])),
                Ok(DriverCall::Unsupported { command: c.into() })
            );
        }
    }

    #[test]
    fn bad_arguments_are_named_without_echoing_values() {
        let cases: [(&[&str], &str); 7] = [
            (
                &[],
                "no driver command given (expected init, mount or unmount)",
            ),
            (&["mount"], "mount: missing the volume directory argument"),
            (&["mount", "/d"], "mount: missing the JSON options argument"),
            (
                &["mount", "rel/d", "{}"],
                "mount: the volume directory \"rel/d\" is not an absolute path",
            ),
            (
                &["mount", "/d", "[1]"],
                "mount: the options argument must be a JSON object of strings",
            ),
            (
                &[
                    "mount",
                    "/d",
                    r#"{"kubernetes.io/secret/clientsecret":12345}"#,
                ],
                "mount: option kubernetes.io/secret/clientsecret must be a string",
            ),
            (
                &["unmount", "/d", "extra"],
                "unmount: takes 1 argument(s), got 2",
            ),
        ];
        for (a, want) in cases {
            assert_eq!(
                DriverCall::parse(&args(a)).expect_err(want).to_string(),
                want
            );
        }
        let err = DriverCall::parse(&args(&["mount", "/d", "{\"a\": s3cr3t}"]))
            .expect_err("not json")
            .to_string();
        assert!(
            err.starts_with("mount: the options argument is not valid JSON (line 1 column"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");

        // Long keys and paths are cut (found by fuzz/fuzz_targets/flexvol_options.rs).
        let long = "k".repeat(5000);
        for a in [
            vec!["mount".to_owned(), format!("rel/{long}"), "{}".to_owned()],
            vec![
                "mount".to_owned(),
                "/d".to_owned(),
                format!("{{\"{long}\": 1}}"),
            ],
        ] {
            let err = DriverCall::parse(&a).expect_err("refused").to_string();
            assert!(err.len() < 300 && err.contains('…'), "{} bytes", err.len());
        }
    }
}
