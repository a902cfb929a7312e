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
        .map_err(|e| format!("not valid PEM: {e}"))
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
}
