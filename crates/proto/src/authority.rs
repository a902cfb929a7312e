//! `:authority` normalising for gRPC over unix sockets: [`LocalAuthority`] sits between an
//! accepted connection and the HTTP/2 server and rewrites the `:authority` of every request to
//! `localhost`, so that the server answers whatever name the client put there.
//!
//! Why: a unix socket has no host name, so every gRPC client invents one. kubelet's CSI client
//! sends `localhost`; kubelet's plugin watcher (grpc-go ≥ 1.6x dialling `unix://<path>`) sends
//! the socket path percent-encoded (`%2Fvar%2Flib%2Fkubelet%2Fplugins_registry%2F…-reg.sock`);
//! older grpc-go and grpc-java send the raw path. h2, the HTTP/2 layer under tonic, parses
//! `:authority` as a URI authority and resets any stream whose value is not one (`%`, `/`),
//! with `PROTOCOL_ERROR`, before the application sees it. keyvol never looks at the authority,
//! so the adapter replaces it with a value h2 accepts instead of patching h2.
//!
//! How: the client-to-server byte stream is parsed into HTTP/2 frames. Everything except header
//! blocks passes through untouched (DATA payloads are read straight into the server's buffer).
//! A header block (`HEADERS` plus any `CONTINUATION` frames) is collected, decoded with the
//! connection's HPACK decoder (which tracks the client's dynamic table), and re-encoded with
//! literal representations that never touch the server's dynamic table, `:authority` replaced
//! and padding dropped, then split into frames of at most [`MIN_MAX_FRAME_SIZE`] bytes (a size
//! every HTTP/2 peer must accept). Anything unexpected — a connection that does not start with
//! the HTTP/2 preface, a malformed or oversized header block, a frame out of order — switches the
//! adapter to plain pass-through from that byte on, so the server reports the protocol error
//! itself, exactly as it would without the adapter. The server-to-client direction is never
//! touched.

use std::borrow::Cow;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// The authority every request reaches the server with.
pub const REWRITTEN_AUTHORITY: &[u8] = b"localhost";

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of an HTTP/2 frame header.
const FRAME_HEADER_LEN: usize = 9;

/// The smallest SETTINGS_MAX_FRAME_SIZE a peer may advertise, so the largest frame any HTTP/2
/// server accepts without knowing its settings. Rewritten blocks are split at this size.
pub const MIN_MAX_FRAME_SIZE: usize = 16_384;

/// Largest compressed header block collected before giving up and passing it through to the
/// server, which then applies its own limits. hyper's server refuses header lists over 16 KiB,
/// so no request a server would accept comes near this.
const MAX_BLOCK_BYTES: usize = 256 * 1024;

/// Largest re-encoded header block. HPACK can expand a small block a long way (one byte can
/// name a 4 KiB dynamic-table entry), so the decoded size is capped separately.
const MAX_DECODED_BYTES: usize = 1024 * 1024;

/// The dynamic table size the client may use: the HTTP/2 default, which tonic's server does not
/// change (SETTINGS_HEADER_TABLE_SIZE is never sent).
const CLIENT_TABLE_SIZE: usize = 4096;

/// Size of the buffer frames are read into between header blocks.
const READ_CHUNK: usize = 16 * 1024;

const FRAME_HEADERS: u8 = 0x1;
const FRAME_PUSH_PROMISE: u8 = 0x5;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

/// Where the parser is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matching the connection preface; `seen` bytes of it so far.
    Preface { seen: usize },
    /// Collecting a frame header.
    Head,
    /// Passing `remaining` payload bytes of an ordinary frame.
    Pass { remaining: usize },
    /// Collecting the payload of a header-carrying frame.
    Collect {
        kind: u8,
        flags: u8,
        stream: u32,
        remaining: usize,
    },
    /// Not (or no longer) parsing: every byte passes as it is.
    Transparent,
}

/// A header block whose `HEADERS` frame has arrived but whose `END_HEADERS` has not.
#[derive(Debug)]
struct OpenBlock {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
}

/// The frame-level rewriter, independent of any I/O: bytes from the client go in through
/// [`Rewriter::feed`], bytes for the server come out.
pub struct Rewriter {
    state: State,
    head: [u8; FRAME_HEADER_LEN],
    head_len: usize,
    /// Payload of the frame being collected.
    payload: Vec<u8>,
    /// The raw bytes (headers and payloads) of the open block's frames, for pass-through if the
    /// block cannot be rewritten.
    raw: Vec<u8>,
    /// The open block's fragment so far.
    block: Vec<u8>,
    open: Option<OpenBlock>,
    decoder: loona_hpack::Decoder<'static>,
}

impl std::fmt::Debug for Rewriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rewriter")
            .field("state", &self.state)
            .field("block_len", &self.block.len())
            .finish_non_exhaustive()
    }
}

impl Default for Rewriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Rewriter {
    /// A rewriter at the start of a connection.
    pub fn new() -> Self {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(CLIENT_TABLE_SIZE);
        Self {
            state: State::Preface { seen: 0 },
            head: [0; FRAME_HEADER_LEN],
            head_len: 0,
            payload: Vec::new(),
            raw: Vec::new(),
            block: Vec::new(),
            open: None,
            decoder,
        }
    }

    /// Whether the rewriter has given up parsing (not HTTP/2, or a protocol error that the
    /// server will report).
    pub fn is_transparent(&self) -> bool {
        self.state == State::Transparent
    }

    /// How many of the next bytes from the client pass through unchanged, if any: the rest of
    /// an ordinary frame's payload, or everything once transparent. The caller may move that
    /// many bytes straight to the server and report them with [`Rewriter::passed`].
    pub fn passthrough_len(&self) -> Option<usize> {
        match self.state {
            State::Pass { remaining } if remaining > 0 => Some(remaining),
            State::Transparent => Some(usize::MAX),
            _ => None,
        }
    }

    /// Records that `n` bytes (at most [`Rewriter::passthrough_len`]) went through unchanged.
    pub fn passed(&mut self, n: usize) {
        if let State::Pass { remaining } = &mut self.state {
            *remaining = remaining.saturating_sub(n);
            if *remaining == 0 {
                self.state = State::Head;
            }
        }
    }

    /// Consumes bytes from the client and appends what the server should read to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.state {
                State::Transparent => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Preface { seen } => {
                    let want = &PREFACE[seen..];
                    let n = want.len().min(input.len());
                    if input[..n] != want[..n] {
                        // Not HTTP/2 with prior knowledge: let the server say so.
                        out.extend_from_slice(&PREFACE[..seen]);
                        self.state = State::Transparent;
                        continue;
                    }
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if seen + n == PREFACE.len() {
                        State::Head
                    } else {
                        State::Preface { seen: seen + n }
                    };
                }
                State::Head => {
                    let n = (FRAME_HEADER_LEN - self.head_len).min(input.len());
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&input[..n]);
                    self.head_len += n;
                    input = &input[n..];
                    if self.head_len == FRAME_HEADER_LEN {
                        self.head_len = 0;
                        self.start_frame(out);
                    }
                }
                State::Pass { remaining } => {
                    let n = remaining.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.passed(n);
                }
                State::Collect {
                    kind,
                    flags,
                    stream,
                    remaining,
                } => {
                    let n = remaining.min(input.len());
                    self.payload.extend_from_slice(&input[..n]);
                    self.raw.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if n == remaining {
                        self.state = State::Head;
                        self.end_frame(kind, flags, stream, out);
                    } else {
                        self.state = State::Collect {
                            kind,
                            flags,
                            stream,
                            remaining: remaining - n,
                        };
                    }
                }
            }
        }
    }

    /// A frame header is complete: decide how its payload is handled.
    fn start_frame(&mut self, out: &mut Vec<u8>) {
        let head = self.head;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let kind = head[3];
        let flags = head[4];
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let carries_block = matches!(
            kind,
            FRAME_HEADERS | FRAME_CONTINUATION | FRAME_PUSH_PROMISE
        );
        if !carries_block {
            if self.open.is_some() {
                // Only CONTINUATION may follow an unfinished block (RFC 9113 §6.10).
                self.give_up(&head, out);
                return;
            }
            out.extend_from_slice(&head);
            self.state = if len == 0 {
                State::Head
            } else {
                State::Pass { remaining: len }
            };
            return;
        }
        if self.raw.len() + FRAME_HEADER_LEN + len > MAX_BLOCK_BYTES {
            self.give_up(&head, out);
            return;
        }
        self.raw.extend_from_slice(&head);
        self.payload.clear();
        self.state = State::Collect {
            kind,
            flags,
            stream,
            remaining: len,
        };
        if len == 0 {
            self.state = State::Head;
            self.end_frame(kind, flags, stream, out);
        }
    }

    /// A header-carrying frame is complete.
    fn end_frame(&mut self, kind: u8, flags: u8, stream: u32, out: &mut Vec<u8>) {
        let fragment = match (kind, &self.open) {
            (FRAME_HEADERS, None) => {
                let Some((priority, fragment)) = split_headers_payload(flags, &self.payload) else {
                    self.give_up(&[], out);
                    return;
                };
                self.open = Some(OpenBlock {
                    stream,
                    end_stream: flags & FLAG_END_STREAM != 0,
                    priority,
                });
                fragment
            }
            (FRAME_CONTINUATION, Some(open)) if open.stream == stream => self.payload.as_slice(),
            // PUSH_PROMISE from a client, HEADERS inside an open block, a CONTINUATION without
            // one or for another stream: protocol errors for the server to report.
            _ => {
                self.give_up(&[], out);
                return;
            }
        };
        self.block.extend_from_slice(fragment);
        if flags & FLAG_END_HEADERS != 0 {
            self.finish_block(out);
        }
    }

    /// The open block is complete: decode, rewrite and emit it.
    fn finish_block(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let mut encoded = Vec::with_capacity(self.block.len() + 16);
        let mut overflow = false;
        // Huffman strings decoded here with one decoder per thread (the HPACK decoder would
        // build a decoding table for each); a block that cannot be read this way goes to it
        // as received, and it reports what is wrong.
        let plain = without_huffman(&self.block);
        let block = plain.as_deref().unwrap_or(&self.block);
        let decoded = self.decoder.decode_with_cb(block, |name, value| {
            if overflow {
                return;
            }
            let value = if name.as_ref() == b":authority" {
                Cow::Borrowed(REWRITTEN_AUTHORITY)
            } else {
                value
            };
            encode_literal(&name, &value, &mut encoded);
            overflow = encoded.len() > MAX_DECODED_BYTES;
        });
        if decoded.is_err() || overflow {
            self.give_up(&[], out);
            return;
        }
        emit_block(&open, &encoded, out);
        self.block.clear();
        self.raw.clear();
        self.payload.clear();
    }

    /// Stops parsing: the bytes of the unfinished block (and `extra`, a frame header not yet
    /// recorded) go to the server as received, and so does everything after.
    fn give_up(&mut self, extra: &[u8], out: &mut Vec<u8>) {
        out.append(&mut self.raw);
        out.extend_from_slice(extra);
        self.block = Vec::new();
        self.payload = Vec::new();
        self.open = None;
        self.state = State::Transparent;
    }
}

/// Splits a HEADERS payload into its priority fields and fragment, dropping padding. `None`
/// when the padding is longer than the payload allows.
fn split_headers_payload(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut body = payload;
    let mut pad = 0usize;
    if flags & FLAG_PADDED != 0 {
        let (&len, rest) = body.split_first()?;
        pad = usize::from(len);
        body = rest;
    }
    let priority = if flags & FLAG_PRIORITY != 0 {
        let fields: [u8; 5] = body.get(..5)?.try_into().ok()?;
        body = &body[5..];
        Some(fields)
    } else {
        None
    };
    let end = body.len().checked_sub(pad)?;
    Some((priority, &body[..end]))
}

thread_local! {
    /// One Huffman decoder per thread: building one builds its decoding table.
    static HUFFMAN: std::cell::RefCell<loona_hpack::huffman::HuffmanDecoder> =
        std::cell::RefCell::new(loona_hpack::huffman::HuffmanDecoder::new());
}

/// Reads an HPACK integer with an `n`-bit prefix (RFC 7541 §5.1) at the start of `input`:
/// the value and the bytes it took. `None` when cut short or too large.
fn read_integer(input: &[u8], n: u32) -> Option<(usize, usize)> {
    let mask = (1usize << n) - 1;
    let mut value = usize::from(*input.first()?) & mask;
    if value < mask {
        return Some((value, 1));
    }
    let mut shift = 0;
    for (i, &b) in input.iter().enumerate().skip(1) {
        if shift > 21 {
            return None;
        }
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// `block` with every Huffman-coded string literal (RFC 7541 §5.2) replaced by its plain
/// form, everything else byte for byte: the same header list and the same dynamic-table
/// effects. `None` when the block has no Huffman string, or cannot be read (then the HPACK
/// decoder is given it as it is).
fn without_huffman(block: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(block.len() * 2);
    let mut any = false;
    let mut at = 0;
    while at < block.len() {
        let first = block[at];
        let (prefix, strings) = match first {
            b if b & 0x80 != 0 => (7, 0),    // indexed field
            b if b & 0xc0 == 0x40 => (6, 1), // literal with incremental indexing
            b if b & 0xe0 == 0x20 => (5, 0), // dynamic table size update
            _ => (4, 1),                     // literal without indexing / never indexed
        };
        let (index, len) = read_integer(&block[at..], prefix)?;
        out.extend_from_slice(&block[at..at + len]);
        at += len;
        // A literal with index 0 carries its name as a string before the value.
        let strings = if strings == 1 && index == 0 {
            2
        } else {
            strings
        };
        for _ in 0..strings {
            let huffman = block.get(at)? & 0x80 != 0;
            let (n, len) = read_integer(&block[at..], 7)?;
            let bytes = block.get(at + len..at + len + n)?;
            at += len + n;
            if huffman {
                let plain = HUFFMAN.with(|d| d.borrow_mut().decode(bytes)).ok()?;
                encode_string(&plain, &mut out);
                any = true;
            } else {
                encode_string(bytes, &mut out);
            }
        }
    }
    any.then_some(out)
}

/// HPACK "literal header field without indexing — new name" (RFC 7541 §6.2.2), strings without
/// Huffman coding: nothing is added to the server's dynamic table.
fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x00);
    encode_string(name, out);
    encode_string(value, out);
}

/// An HPACK string literal (RFC 7541 §5.2) with the Huffman bit clear.
fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = loona_hpack::encoder::encode_integer_into(bytes.len(), 7, 0, out);
    out.extend_from_slice(bytes);
}

/// Writes a rewritten block as one HEADERS frame plus CONTINUATION frames, none longer than
/// [`MIN_MAX_FRAME_SIZE`].
fn emit_block(open: &OpenBlock, block: &[u8], out: &mut Vec<u8>) {
    let priority_len = if open.priority.is_some() { 5 } else { 0 };
    let first_len = block.len().min(MIN_MAX_FRAME_SIZE - priority_len);
    let (first, mut rest) = block.split_at(first_len);
    let mut flags = 0;
    if open.end_stream {
        flags |= FLAG_END_STREAM;
    }
    if open.priority.is_some() {
        flags |= FLAG_PRIORITY;
    }
    if rest.is_empty() {
        flags |= FLAG_END_HEADERS;
    }
    write_frame_header(
        out,
        priority_len + first.len(),
        FRAME_HEADERS,
        flags,
        open.stream,
    );
    if let Some(priority) = open.priority {
        out.extend_from_slice(&priority);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let n = rest.len().min(MIN_MAX_FRAME_SIZE);
        let (chunk, tail) = rest.split_at(n);
        let flags = if tail.is_empty() { FLAG_END_HEADERS } else { 0 };
        write_frame_header(out, chunk.len(), FRAME_CONTINUATION, flags, open.stream);
        out.extend_from_slice(chunk);
        rest = tail;
    }
}

fn write_frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    // `len` is at most MIN_MAX_FRAME_SIZE, well inside 24 bits.
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// An accepted connection whose requests reach the server with `:authority` `localhost`
/// (see the [module docs](self)). Writes go to the client unchanged.
#[derive(Debug)]
pub struct LocalAuthority<S> {
    inner: S,
    rewriter: Rewriter,
    /// Rewritten bytes not yet read by the server, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    scratch: Box<[u8]>,
}

impl<S> LocalAuthority<S> {
    /// Wraps an accepted connection.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            rewriter: Rewriter::new(),
            out: Vec::new(),
            out_pos: 0,
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }

    /// The wrapped connection.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LocalAuthority<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(limit) = this.rewriter.passthrough_len() {
                // Payload that passes unchanged goes straight into the server's buffer.
                let dst = buf.initialize_unfilled_to(limit.min(buf.remaining()));
                let mut direct = ReadBuf::new(dst);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut direct))?;
                let n = direct.filled().len();
                buf.advance(n);
                this.rewriter.passed(n);
                return Poll::Ready(Ok(()));
            }
            let mut scratch = ReadBuf::new(&mut this.scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut scratch))?;
            let filled = scratch.filled();
            if filled.is_empty() {
                // End of stream; an unfinished frame is dropped with the connection.
                return Poll::Ready(Ok(()));
            }
            this.rewriter.feed(filled, &mut this.out);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LocalAuthority<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for LocalAuthority<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame_header(&mut out, payload.len(), kind, flags, stream);
        out.extend_from_slice(payload);
        out
    }

    /// Splits a byte stream (after the preface) into (kind, flags, stream, payload) frames.
    fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len =
                usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
            let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
            out.push((bytes[3], bytes[4], stream, bytes[9..9 + len].to_vec()));
            bytes = &bytes[9 + len..];
        }
        out
    }

    fn request_headers(authority: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        vec![
            (b":method".to_vec(), b"POST".to_vec()),
            (b":scheme".to_vec(), b"http".to_vec()),
            (
                b":path".to_vec(),
                b"/pluginregistration.Registration/GetInfo".to_vec(),
            ),
            (b":authority".to_vec(), authority.to_vec()),
            (b"content-type".to_vec(), b"application/grpc".to_vec()),
            (b"te".to_vec(), b"trailers".to_vec()),
        ]
    }

    fn encode(encoder: &mut loona_hpack::Encoder<'_>, headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        encoder.encode(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())))
    }

    /// Runs `input` through a rewriter in chunks of `chunk` bytes.
    fn rewrite(input: &[u8], chunk: usize) -> (Vec<u8>, bool) {
        let mut rewriter = Rewriter::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            rewriter.feed(piece, &mut out);
        }
        (out, rewriter.is_transparent())
    }

    fn decode_all(server: &mut loona_hpack::Decoder<'_>, block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        server.decode(block).expect("server-side decode")
    }

    const PERCENT_PATH: &[u8] =
        b"%2Fvar%2Flib%2Fkubelet%2Fplugins_registry%2Fsecrets-store.csi.k8s.io-reg.sock";

    #[test]
    fn percent_encoded_authority_becomes_localhost_and_other_frames_pass_unchanged() {
        let mut client = loona_hpack::Encoder::new();
        let block = encode(&mut client, &request_headers(PERCENT_PATH));
        let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
        let data = frame(0x0, FLAG_END_STREAM, 1, b"\0\0\0\0\0");
        let mut input = PREFACE.to_vec();
        input.extend(&settings);
        input.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &block));
        input.extend(&data);
        for chunk in [1, 7, 4096] {
            let (out, transparent) = rewrite(&input, chunk);
            assert!(!transparent);
            assert_eq!(&out[..PREFACE.len()], PREFACE);
            let got = frames(&out[PREFACE.len()..]);
            assert_eq!(got.len(), 3);
            assert_eq!(frame(got[0].0, got[0].1, got[0].2, &got[0].3), settings);
            assert_eq!(frame(got[2].0, got[2].1, got[2].2, &got[2].3), data);
            let (kind, flags, stream, payload) = &got[1];
            assert_eq!(
                (*kind, *flags, *stream),
                (FRAME_HEADERS, FLAG_END_HEADERS, 1)
            );
            let mut server = loona_hpack::Decoder::new();
            let mut want = request_headers(REWRITTEN_AUTHORITY);
            want.sort();
            let mut decoded = decode_all(&mut server, payload);
            decoded.sort();
            assert_eq!(decoded, want);
        }
    }

    /// RFC 7541 Appendix C.4: three requests on one connection, Huffman-coded, the second and
    /// third referring to the dynamic table the first filled.
    const HUFFMAN_REQUESTS: [&str; 3] = [
        "828684418cf1e3c2e5f23a6ba0ab90f4ff",
        "828684be5886a8eb10649cbf",
        "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
    ];

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn huffman_strings_are_decoded_once_per_thread_to_the_same_headers_and_table() {
        let mut as_sent = loona_hpack::Decoder::new();
        let mut plain = loona_hpack::Decoder::new();
        for hex in HUFFMAN_REQUESTS {
            let block = unhex(hex);
            let rewritten = without_huffman(&block).expect("has Huffman strings");
            assert_eq!(
                decode_all(&mut plain, &rewritten),
                decode_all(&mut as_sent, &block),
                "{hex}"
            );
        }
        // The first request's authority, through a rewriter.
        let mut input = PREFACE.to_vec();
        input.extend(frame(
            FRAME_HEADERS,
            FLAG_END_HEADERS,
            1,
            &unhex(HUFFMAN_REQUESTS[0]),
        ));
        let (out, transparent) = rewrite(&input, 5);
        assert!(!transparent);
        let got = frames(&out[PREFACE.len()..]);
        let headers = decode_all(&mut loona_hpack::Decoder::new(), &got[0].3);
        assert!(headers.contains(&(b":authority".to_vec(), REWRITTEN_AUTHORITY.to_vec())));
        assert!(headers.contains(&(b":path".to_vec(), b"/".to_vec())));

        assert_eq!(without_huffman(&[0x82, 0x86]), None, "nothing to decode");
        assert_eq!(without_huffman(&[0x41, 0x8c, 0xf1]), None, "cut short");
        assert_eq!(
            without_huffman(&[0x41, 0x81, 0xff]),
            None,
            "not a Huffman code"
        );
        assert_eq!(
            without_huffman(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
            None,
            "an integer past any table"
        );
    }

    #[test]
    fn the_clients_dynamic_table_is_followed_across_blocks_and_never_used_toward_the_server() {
        // The client's encoder indexes headers in the first block and refers to them in the
        // second; the rewriter must decode the second block with that state, and its own
        // output must decode with a fresh decoder each time (no dynamic-table entries).
        let mut client = loona_hpack::Encoder::new();
        let first = encode(&mut client, &request_headers(b"/var/lib/kubelet/x.sock"));
        let second = encode(&mut client, &request_headers(b"/var/lib/kubelet/x.sock"));
        assert!(
            second.len() < first.len(),
            "second block uses the dynamic table"
        );
        let mut input = PREFACE.to_vec();
        input.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &first));
        input.extend(frame(
            FRAME_HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            3,
            &second,
        ));
        let (out, transparent) = rewrite(&input, 3);
        assert!(!transparent);
        let got = frames(&out[PREFACE.len()..]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, FLAG_END_HEADERS | FLAG_END_STREAM);
        for (_, _, _, payload) in &got {
            let mut fresh = loona_hpack::Decoder::new();
            let decoded = decode_all(&mut fresh, payload);
            assert!(decoded.contains(&(b":authority".to_vec(), b"localhost".to_vec())));
            assert_eq!(decoded.len(), 6);
        }
    }

    #[test]
    fn padding_is_dropped_priority_kept_and_continuations_joined() {
        let mut client = loona_hpack::Encoder::new();
        let block = encode(&mut client, &request_headers(b"localhost"));
        let (a, b) = block.split_at(10);
        let mut headers_payload = vec![3u8]; // pad length
        headers_payload.extend([0x80, 0, 0, 0, 15]); // exclusive dependency on 0, weight 16
        headers_payload.extend(a);
        headers_payload.extend([0, 0, 0]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(
            FRAME_HEADERS,
            FLAG_PADDED | FLAG_PRIORITY,
            5,
            &headers_payload,
        ));
        input.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 5, b));
        let (out, transparent) = rewrite(&input, 2);
        assert!(!transparent);
        let got = frames(&out[PREFACE.len()..]);
        assert_eq!(got.len(), 1);
        let (kind, flags, stream, payload) = &got[0];
        assert_eq!(
            (*kind, *flags, *stream),
            (FRAME_HEADERS, FLAG_PRIORITY | FLAG_END_HEADERS, 5)
        );
        assert_eq!(&payload[..5], &[0x80, 0, 0, 0, 15]);
        let decoded = decode_all(&mut loona_hpack::Decoder::new(), &payload[5..]);
        assert_eq!(decoded, request_headers(b"localhost"));
    }

    #[test]
    fn a_large_block_is_split_into_frames_no_larger_than_the_minimum_max_frame_size() {
        let mut headers = request_headers(PERCENT_PATH);
        headers.push((b"x-big".to_vec(), vec![b'a'; 40_000]));
        let block = encode(&mut loona_hpack::Encoder::new(), &headers);
        let mut input = PREFACE.to_vec();
        // The client splits at its own size; the rewriter re-splits.
        let (a, rest) = block.split_at(16_000);
        input.extend(frame(FRAME_HEADERS, 0, 7, a));
        input.extend(frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 7, rest));
        let (out, transparent) = rewrite(&input, 5000);
        assert!(!transparent);
        let got = frames(&out[PREFACE.len()..]);
        assert!(got.len() >= 3);
        assert!(got.iter().all(|f| f.3.len() <= MIN_MAX_FRAME_SIZE));
        assert_eq!(got[0].0, FRAME_HEADERS);
        assert!(got[1..].iter().all(|f| f.0 == FRAME_CONTINUATION));
        assert!(
            got[..got.len() - 1]
                .iter()
                .all(|f| f.1 & FLAG_END_HEADERS == 0)
        );
        assert_eq!(got.last().unwrap().1, FLAG_END_HEADERS);
        let joined: Vec<u8> = got.iter().flat_map(|f| f.3.clone()).collect();
        let mut want = headers.clone();
        want[3].1 = b"localhost".to_vec();
        assert_eq!(decode_all(&mut loona_hpack::Decoder::new(), &joined), want);
    }

    #[test]
    fn absent_authority_stays_absent() {
        let mut headers = request_headers(b"");
        headers.remove(3);
        let block = encode(&mut loona_hpack::Encoder::new(), &headers);
        let mut input = PREFACE.to_vec();
        input.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &block));
        let (out, _) = rewrite(&input, 64);
        let got = frames(&out[PREFACE.len()..]);
        assert_eq!(
            decode_all(&mut loona_hpack::Decoder::new(), &got[0].3),
            headers
        );
    }

    #[test]
    fn anything_that_is_not_http2_passes_through_untouched() {
        let input = b"GET / HTTP/1.1\r\nHost: /var/run/x.sock\r\n\r\n";
        for chunk in [1, 3, 100] {
            let (out, transparent) = rewrite(input, chunk);
            assert!(transparent);
            assert_eq!(out, input);
        }
    }

    #[test]
    fn protocol_errors_reach_the_server_as_sent() {
        let block = encode(
            &mut loona_hpack::Encoder::new(),
            &request_headers(b"localhost"),
        );
        let cases: Vec<Vec<u8>> = vec![
            // a DATA frame inside an open header block
            [frame(FRAME_HEADERS, 0, 1, &block), frame(0x0, 0, 1, b"xy")].concat(),
            // CONTINUATION for another stream
            [
                frame(FRAME_HEADERS, 0, 1, &block),
                frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 3, b""),
            ]
            .concat(),
            // PUSH_PROMISE from a client
            frame(FRAME_PUSH_PROMISE, FLAG_END_HEADERS, 1, &[0, 0, 0, 2]),
            // an HPACK index that does not exist
            frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &[0xff, 0x7f]),
            // padding longer than the payload
            frame(FRAME_HEADERS, FLAG_END_HEADERS | FLAG_PADDED, 1, &[200, 1]),
        ];
        for case in cases {
            let input = [PREFACE, case.as_slice(), b"trailing bytes"].concat();
            let (out, transparent) = rewrite(&input, 1);
            assert!(transparent);
            assert_eq!(out, input);
        }
    }

    #[test]
    fn an_oversized_block_is_passed_on_for_the_server_to_refuse() {
        let chunk = vec![0u8; MIN_MAX_FRAME_SIZE];
        let mut input = PREFACE.to_vec();
        input.extend(frame(FRAME_HEADERS, 0, 1, &chunk));
        for _ in 0..(MAX_BLOCK_BYTES / MIN_MAX_FRAME_SIZE) {
            input.extend(frame(FRAME_CONTINUATION, 0, 1, &chunk));
        }
        let (out, transparent) = rewrite(&input, 9000);
        assert!(transparent);
        assert_eq!(out, input);
    }

    #[test]
    fn passthrough_len_covers_data_payloads() {
        let mut rewriter = Rewriter::new();
        let mut out = Vec::new();
        rewriter.feed(PREFACE, &mut out);
        rewriter.feed(&frame(0x0, 0, 1, &[])[..9], &mut out);
        assert_eq!(rewriter.passthrough_len(), None, "empty payload");
        let mut head = Vec::new();
        write_frame_header(&mut head, 100, 0x0, 0, 1);
        rewriter.feed(&head, &mut out);
        assert_eq!(rewriter.passthrough_len(), Some(100));
        rewriter.passed(60);
        assert_eq!(rewriter.passthrough_len(), Some(40));
        rewriter.feed(&[7u8; 40], &mut out);
        assert_eq!(rewriter.passthrough_len(), None);
    }
}
