//! The primary ↔ worker channel: a Unix `SOCK_SEQPACKET` socket pair, one
//! JSON message per packet, optionally carrying a file descriptor.
//!
//! Passing a descriptor is how the primary hands a worker an accepted
//! connection (round robin) or the shared listening socket — what Node's
//! cluster does over its IPC channel with `sendHandle`. Sequenced packets
//! keep message boundaries, so a descriptor always travels with the one
//! message it belongs to.

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Largest message; control messages are tiny.
const MAX_MESSAGE: usize = 64 * 1024;

/// One end of a sequenced-packet socket pair.
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair; both ends close on exec unless handed to a child
    /// on purpose (as its stdin).
    pub fn pair() -> io::Result<(Channel, OwnedFd)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel(a), b))
    }

    /// Wrap a descriptor inherited from the parent (a worker's stdin).
    pub fn from_fd(fd: OwnedFd) -> Self {
        Channel(fd)
    }

    /// Send `msg`, with `fd` attached when given.
    pub fn send(&self, msg: &impl Serialize, fd: Option<BorrowedFd>) -> io::Result<()> {
        let bytes = serde_json::to_vec(msg)?;
        let raw = fd.map(|f| [f.as_raw_fd()]);
        let cmsgs: Vec<ControlMessage> = raw
            .as_ref()
            .map(|r| vec![ControlMessage::ScmRights(r)])
            .unwrap_or_default();
        sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(&bytes)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// The next message and the descriptor that came with it; `None` once
    /// the other end has closed.
    pub fn recv<T: DeserializeOwned>(&self) -> io::Result<Option<(T, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let (len, fd) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match recvmsg::<()>(
                    self.0.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other?,
                }
            };
            let mut fd = None;
            for cmsg in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = cmsg {
                    // SAFETY: the kernel just installed these descriptors in
                    // this process; nothing else owns them.
                    fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
                }
            }
            (msg.bytes, fd)
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..len])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(Some((msg, fd)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_descriptor_travels_with_its_message() {
        let (left, right) = Channel::pair().unwrap();
        let right = Channel::from_fd(right);
        let (mut reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
        left.send(&"take this", Some(writer.as_fd())).unwrap();
        left.send(&"and this, alone", None).unwrap();

        let (msg, fd) = right.recv::<String>().unwrap().unwrap();
        assert_eq!(msg, "take this");
        let mut passed = std::os::unix::net::UnixStream::from(fd.expect("a descriptor"));
        passed.write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi", "the passed descriptor is the same socket");
        writer.write_all(b"").unwrap();

        let (msg, fd) = right.recv::<String>().unwrap().unwrap();
        assert_eq!(msg, "and this, alone");
        assert!(fd.is_none());
        drop(left);
        assert!(right.recv::<String>().unwrap().is_none(), "closed");
    }
}
