//! Sending slips to the receipt printer: a device node (`/dev/usb/lp0`), a file (a spool or
//! test capture), or a network printer's raw port 9100. Network printers are asked for their
//! paper status first (`DLE EOT 4`), so "out of paper" is reported before the slip is lost
//! in a printer that cannot print it.

use serde::Deserialize;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PrinterConfig {
    /// A character device; it must already exist (a missing device means the printer is off).
    Device { path: PathBuf },
    /// Slips are appended to this file.
    File { path: PathBuf },
    /// Raw TCP (JetDirect / AppSocket), normally port 9100.
    Network { addr: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrintError {
    #[error("printer offline: {0}")]
    Offline(String),
    #[error("printer is out of paper")]
    OutOfPaper,
    #[error("printer cover open or printer error")]
    PrinterFault,
}

impl PrintError {
    pub fn code(&self) -> &'static str {
        match self {
            PrintError::Offline(_) => "PRINTER_OFFLINE",
            PrintError::OutOfPaper => "PRINTER_OUT_OF_PAPER",
            PrintError::PrinterFault => "PRINTER_FAULT",
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(2);

pub fn print(cfg: &PrinterConfig, bytes: &[u8]) -> Result<(), PrintError> {
    let offline = |e: std::io::Error| PrintError::Offline(e.to_string());
    match cfg {
        PrinterConfig::Device { path } => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| PrintError::Offline(format!("{}: {e}", path.display())))?;
            f.write_all(bytes).map_err(offline)?;
            f.flush().map_err(offline)
        }
        PrinterConfig::File { path } => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| PrintError::Offline(format!("{}: {e}", path.display())))?;
            f.write_all(bytes).map_err(offline)?;
            f.sync_data().map_err(offline)
        }
        PrinterConfig::Network { addr } => {
            let sa = addr
                .to_socket_addrs()
                .map_err(offline)?
                .next()
                .ok_or_else(|| PrintError::Offline(format!("{addr}: no address")))?;
            let mut s = TcpStream::connect_timeout(&sa, TIMEOUT).map_err(offline)?;
            s.set_read_timeout(Some(TIMEOUT)).map_err(offline)?;
            s.set_write_timeout(Some(TIMEOUT)).map_err(offline)?;
            // DLE EOT 4: paper roll sensor status. Bits 5–6 set = paper end.
            s.write_all(&[0x10, 0x04, 0x04]).map_err(offline)?;
            let mut st = [0u8; 1];
            match s.read(&mut st) {
                Ok(1) if st[0] & 0x60 == 0x60 => return Err(PrintError::OutOfPaper),
                Ok(1) => {}
                Ok(_) => return Err(PrintError::Offline("printer closed the connection".into())),
                Err(e) => return Err(PrintError::Offline(format!("no status reply: {e}"))),
            }
            // DLE EOT 2: offline cause. Bit 2 = cover open, bit 6 = error.
            s.write_all(&[0x10, 0x04, 0x02]).map_err(offline)?;
            match s.read(&mut st) {
                Ok(1) if st[0] & 0x44 != 0 => return Err(PrintError::PrinterFault),
                Ok(1) => {}
                Ok(_) => return Err(PrintError::Offline("printer closed the connection".into())),
                Err(e) => return Err(PrintError::Offline(format!("no status reply: {e}"))),
            }
            s.write_all(bytes).map_err(offline)?;
            s.flush().map_err(offline)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_offline_and_file_appends() {
        let dir = tempfile::tempdir().unwrap();
        let dev = PrinterConfig::Device {
            path: dir.path().join("no-such-lp0"),
        };
        assert!(matches!(print(&dev, b"x"), Err(PrintError::Offline(_))));
        let f = dir.path().join("spool.bin");
        let file = PrinterConfig::File { path: f.clone() };
        print(&file, b"ab").unwrap();
        print(&file, b"cd").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"abcd");
        // Nothing listening on the port: offline.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let net = PrinterConfig::Network {
            addr: format!("127.0.0.1:{port}"),
        };
        assert!(matches!(print(&net, b"x"), Err(PrintError::Offline(_))));
    }
}
