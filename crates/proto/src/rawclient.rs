//! A deliberately small HTTP/2 gRPC client for interoperability tests (feature `raw-client`):
//! it sends exactly the `:authority` it is given — a socket path, a percent-encoded path, or
//! none at all — which tonic's own client cannot, so tests can reproduce what kubelet's plugin
//! watcher, older grpc-go and grpc-java send. One unary call per connection; it reports what
//! came back, including a stream reset or GOAWAY, instead of judging it.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
/// Largest frame accepted from the server (its frames follow our default SETTINGS).
const MAX_FRAME: usize = 16_384;

/// What the server answered to one unary call.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawReply {
    /// Response and trailer fields in the order received.
    pub headers: Vec<(String, String)>,
    /// The response message (gRPC length prefix removed), if one arrived.
    pub message: Option<Vec<u8>>,
    /// The error code of an RST_STREAM on the call's stream.
    pub reset: Option<u32>,
    /// The error code of a GOAWAY.
    pub goaway: Option<u32>,
}

impl RawReply {
    /// The value of a response or trailer field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The call's `grpc-status` (0 is OK).
    pub fn grpc_status(&self) -> Option<&str> {
        self.field("grpc-status")
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// Calls `method` (e.g. `/pluginregistration.Registration/GetInfo`) on the server at `socket`
/// with the encoded `request` message, sending `authority` as `:authority` (or no `:authority`
/// field when `None`), and returns what the server answered on the call's stream.
pub async fn unary(
    socket: &Path,
    authority: Option<&[u8]>,
    method: &str,
    request: &[u8],
) -> std::io::Result<RawReply> {
    let mut conn = UnixStream::connect(socket).await?;
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", method.as_bytes()),
    ];
    if let Some(authority) = authority {
        fields.push((b":authority", authority));
    }
    fields.push((b"content-type", b"application/grpc"));
    fields.push((b"te", b"trailers"));
    let block = loona_hpack::Encoder::new().encode(fields);
    let mut message = vec![0u8];
    let len = u32::try_from(request.len()).map_err(|_| invalid("request too large"))?;
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(request);

    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(frame(HEADERS, END_HEADERS, 1, &block));
    out.extend(frame(DATA, END_STREAM, 1, &message));
    conn.write_all(&out).await?;

    let mut reply = RawReply::default();
    let mut decoder = loona_hpack::Decoder::new();
    let mut block: Vec<u8> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    loop {
        let mut head = [0u8; 9];
        match conn.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        if len > MAX_FRAME {
            return Err(invalid("frame larger than the default maximum"));
        }
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).await?;
        match kind {
            SETTINGS if flags & ACK == 0 => conn.write_all(&frame(SETTINGS, ACK, 0, &[])).await?,
            PING if flags & ACK == 0 => conn.write_all(&frame(PING, ACK, 0, &payload)).await?,
            GOAWAY => {
                let code = payload
                    .get(4..8)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                reply.goaway = code;
                break;
            }
            RST_STREAM if stream == 1 => {
                reply.reset = payload
                    .get(..4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                break;
            }
            HEADERS | CONTINUATION if stream == 1 => {
                // The server sends neither padding nor priority.
                block.extend_from_slice(&payload);
                if flags & END_HEADERS != 0 {
                    let decoded = decoder.decode(&block).map_err(|_| invalid("bad HPACK"))?;
                    block.clear();
                    for (name, value) in decoded {
                        reply.headers.push((
                            String::from_utf8_lossy(&name).into_owned(),
                            String::from_utf8_lossy(&value).into_owned(),
                        ));
                    }
                }
                if flags & END_STREAM != 0 {
                    break;
                }
            }
            DATA if stream == 1 => {
                body.extend_from_slice(&payload);
                if flags & END_STREAM != 0 {
                    break;
                }
            }
            _ => {}
        }
    }
    if body.len() >= 5 {
        reply.message = Some(body[5..].to_vec());
    }
    Ok(reply)
}
