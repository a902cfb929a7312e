//! PEM text as Go's `encoding/pem` writes it (64-column base64, `\n` line ends, trailing newline),
//! and splitting PEM files into blocks.

/// Encodes one block.
pub fn encode_pem(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// A parsed block: tag and DER contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// e.g. `CERTIFICATE`, `PRIVATE KEY`.
    pub tag: String,
    /// The decoded contents.
    pub der: Vec<u8>,
}

/// Every block of a PEM text, in order. Text between blocks is ignored.
pub fn parse_blocks(text: &[u8]) -> Result<Vec<Block>, String> {
    pem::parse_many(text)
        .map(|blocks| {
            blocks
                .into_iter()
                .map(|p| Block {
                    tag: p.tag().to_owned(),
                    der: p.into_contents(),
                })
                .collect()
        })
        .map_err(|e| format!("not valid PEM: {}", pem_problem(&e)))
}

/// What is wrong, in words of our own: the parser's messages quote the text they refused (tags,
/// header lines), which here is a secret's value.
fn pem_problem(e: &pem::PemError) -> &'static str {
    match e {
        pem::PemError::MismatchedTags(..) => "a block's BEGIN and END labels differ",
        pem::PemError::MalformedFraming => "a block's BEGIN or END line is malformed",
        pem::PemError::MissingBeginTag => "a block has no BEGIN line",
        pem::PemError::MissingEndTag => "a block has no END line",
        pem::PemError::MissingData => "a block has no data",
        pem::PemError::InvalidData(_) => "a block's data is not valid base64",
        pem::PemError::InvalidHeader(_) => "a block's header lines are malformed",
        pem::PemError::NotUtf8(_) => "the text is not UTF-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wrap_at_64_and_end_with_newline() {
        let text = encode_pem("CERTIFICATE", &[7u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(*lines.last().expect("line"), "-----END CERTIFICATE-----");
        assert!(text.ends_with("-----\n"));
        let parsed = parse_blocks(text.as_bytes()).expect("parses");
        assert_eq!(
            parsed,
            vec![Block {
                tag: "CERTIFICATE".into(),
                der: vec![7u8; 100]
            }]
        );
    }

    #[test]
    fn errors_never_quote_the_text() {
        // Found by fuzz/fuzz_targets/pem.rs: the parser's messages quote labels and header lines,
        // and the text is a secret's value.
        for text in [
            "-----BEGIN PRIVATE KEY top-secret-label-1-----\nAAAA\n-----END PRIVATE KEY other-label-2-----\n",
            // Lines before a blank line are headers, which need a colon.
            "-----BEGIN PRIVATE KEY-----\ntop-secret-header-line\n\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let err = parse_blocks(text.as_bytes()).expect_err("malformed");
            assert!(err.starts_with("not valid PEM: "), "{err}");
            for secret in ["top-secret", "label-1", "label-2", "header-line"] {
                assert!(!err.contains(secret), "{err}");
            }
        }
    }
}
