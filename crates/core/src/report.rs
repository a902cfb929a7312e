//! Rendering an error and its causes as one line, for the edges that show errors to people: the
//! gRPC status message kubelet records, the FlexVolume JSON `message`, the CLI's last line, and
//! log fields and Kubernetes events.
//!
//! Errors in this workspace never repeat their source in their own message (house style: a
//! variant with a `#[source]` says only what failed), so [`chain`] can simply join the links
//! with `": "`. Some foreign errors do repeat theirs — kube-client's `ApiError: <status> (<status
//! as Debug>)` and `HyperError: <cause>`, azure_core's wrapped errors, which print exactly their
//! cause — so one rule covers them: when a link's message contains its cause's message, the
//! link is cut right after it and the cause is not printed again. That keeps every cause once
//! and drops a `Debug` dump trailing the cause (kube's `Status { .. }`).

use std::error::Error;

/// Separator between an error and its cause.
const SEPARATOR: &str = ": ";

/// `error: cause: cause…`, every cause once.
///
/// The text is only as free of secrets as the errors are: callers render errors whose messages
/// are built from names, codes and services' error messages.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut links: Vec<String> = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !text.is_empty() {
            match links.last_mut() {
                // A foreign wrapper that printed its cause: keep its words up to the end of the
                // cause, and say the cause once.
                Some(last) if last.contains(text.as_str()) => {
                    if let Some(at) = last.find(text.as_str()) {
                        last.truncate(at + text.len());
                    }
                }
                _ => links.push(text),
            }
        }
        cur = cause.source();
    }
    links.retain(|l| !l.is_empty());
    links.join(SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to mount objects")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("failed to get secret/db")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn every_cause_is_rendered_once_in_order() {
        let e = Outer(Middle(std::io::Error::other("connection refused")));
        assert_eq!(
            chain(&e),
            "failed to mount objects: failed to get secret/db: connection refused"
        );
    }

    #[test]
    fn an_error_without_a_source_is_its_message() {
        assert_eq!(chain(&std::io::Error::other("boom")), "boom");
    }

    #[test]
    fn a_cause_that_repeats_words_of_an_earlier_link_is_still_rendered() {
        // The old printers dropped any cause already contained anywhere in the text so far.
        #[derive(Debug, thiserror::Error)]
        #[error("secret not found")]
        struct Top(#[source] Mid);
        #[derive(Debug, thiserror::Error)]
        #[error("failed to read the cache")]
        struct Mid(#[source] std::io::Error);
        let e = Top(Mid(std::io::Error::other("not found")));
        assert_eq!(
            chain(&e),
            "secret not found: failed to read the cache: not found"
        );
    }

    /// A foreign error that prints its cause in its own message (prefix, cause, suffix), as
    /// kube-client's `Api` variant (`ApiError: <status> (<status as Debug>)`, with the status as
    /// its source) and azure_core's wrapped errors do.
    #[derive(Debug)]
    struct Foreign {
        prefix: &'static str,
        suffix: &'static str,
        cause: std::io::Error,
    }

    impl std::fmt::Display for Foreign {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}{}{}", self.prefix, self.cause, self.suffix)
        }
    }

    impl Error for Foreign {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.cause)
        }
    }

    #[test]
    fn a_foreign_wrapper_that_prints_its_cause_is_cut_after_it() {
        #[derive(Debug, thiserror::Error)]
        #[error("failed to get secretproviderclass default/c")]
        struct Ours(#[source] Foreign);
        let e = Ours(Foreign {
            prefix: "ApiError: ",
            suffix: " (Status { code: 403, .. })",
            cause: std::io::Error::other("forbidden: Forbidden"),
        });
        assert_eq!(
            chain(&e),
            "failed to get secretproviderclass default/c: ApiError: forbidden: Forbidden"
        );
        let same = Foreign {
            prefix: "",
            suffix: "",
            cause: std::io::Error::other("tcp connect error"),
        };
        assert_eq!(chain(&same), "tcp connect error");
    }
}
