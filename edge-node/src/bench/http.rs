//! A minimal HTTP/1.1 keep-alive client for the load generator.
//!
//! Why not reqwest: the generator shares two cores with the node it measures; a request here
//! is one `write` of prebuilt bytes and one buffered read of the reply, a few microseconds of
//! CPU, so the figures describe the node rather than the client. Only what the edge API
//! sends back is supported: a status line, headers, and a `Content-Length` body.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub struct Conn {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    req: Vec<u8>,
    line: String,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        Ok(Conn {
            r: BufReader::with_capacity(16 * 1024, r),
            w,
            req: Vec::with_capacity(1024),
            line: String::new(),
        })
    }

    /// Send one request and read the whole reply: (status, body).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        idem: Option<&str>,
        body: Option<&[u8]>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        use std::io::Write;
        self.req.clear();
        write!(self.req, "{method} {path} HTTP/1.1\r\nHost: bench\r\n")?;
        if let Some(k) = idem {
            write!(self.req, "Idempotency-Key: {k}\r\n")?;
        }
        if let Some(b) = body {
            write!(
                self.req,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )?;
            self.req.extend_from_slice(b);
        } else {
            self.req.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&self.req).await?;
        self.line.clear();
        if self.r.read_line(&mut self.line).await? == 0 {
            bail!("connection closed by the node");
        }
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {:?}", self.line))?;
        let mut len = None;
        loop {
            self.line.clear();
            if self.r.read_line(&mut self.line).await? == 0 {
                bail!("connection closed in headers");
            }
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = Some(v.trim().parse::<usize>()?);
            }
        }
        let len = len.context("reply without Content-Length")?;
        let mut out = vec![0u8; len];
        self.r.read_exact(&mut out).await?;
        Ok((status, out))
    }

    pub async fn get_json(&mut self, path: &str) -> anyhow::Result<serde_json::Value> {
        let (st, b) = self.request("GET", path, None, None).await?;
        if st != 200 {
            bail!("GET {path}: {st} {}", String::from_utf8_lossy(&b));
        }
        Ok(serde_json::from_slice(&b)?)
    }
}
