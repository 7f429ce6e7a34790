//! Who may attach: the owner and mode of every named object shmring opens, and the
//! credentials of every socket peer.
//!
//! `/dev/shm`, `/tmp` and the abstract socket namespace are shared by every local user: any of
//! them can make `/dev/shm/orders` first (mode 0666, a valid-looking header) and wait for a
//! process to open it. So whatever shmring opens by name (a segment, a FIFO, a POSIX or System V
//! queue) must be owned by this process's effective uid, and writable by nobody else; a socket
//! peer must run as this uid. A [`Trust`] widens that on purpose, by uid, by group or by mode
//! bits. A refusal is [`Error::Untrusted`], which names the owner and the way to allow it.
//!
//! ```
//! use shmring::trust::Trust;
//! let t = Trust::default().allow_uid(1000).allow_gid(100);
//! assert_eq!(t.allowed_uids(), &[1000]);
//! assert_eq!(t.allowed_gids(), &[100]);
//! ```

use nix::unistd::{geteuid, getpid};

use crate::error::{Error, Result};

/// What a process (or a peer) may trust beyond its own effective uid.
///
/// The default trusts only objects owned by this process's effective uid with no group or
/// other write bit, and socket peers running as that uid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    uids: Vec<u32>,
    gids: Vec<u32>,
    /// Group / other write bits (a subset of 0o022) accepted on any object.
    writable: u32,
}

/// The credentials of a Unix-socket peer, as the kernel recorded them (`SO_PEERCRED` or
/// `SCM_CREDENTIALS`): not what the peer claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// The peer's process id (in this process's pid namespace; 0 if it is not visible here).
    pub pid: i32,
    /// The peer's effective uid.
    pub uid: u32,
    /// The peer's effective gid.
    pub gid: u32,
}

impl PeerCredentials {
    /// This process's own credentials.
    pub fn current() -> PeerCredentials {
        PeerCredentials {
            pid: getpid().as_raw(),
            uid: geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }
}

/// Which kind of file an object must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file (shared-memory segments, POSIX queues).
    Regular,
    /// A named pipe.
    Fifo,
    /// A Unix socket file.
    Socket,
}

impl FileKind {
    fn mode_bits(self) -> u32 {
        match self {
            FileKind::Regular => libc::S_IFREG,
            FileKind::Fifo => libc::S_IFIFO,
            FileKind::Socket => libc::S_IFSOCK,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            FileKind::Regular => "a regular file",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
        }
    }
}

fn type_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        _ => "a file of unknown type",
    }
}

/// How to allow an owner uid, for the error messages.
fn allow_uid_hint(uid: u32) -> String {
    format!(
        "if uid {uid} is trusted, allow it with Config::allow_uid({uid}) or Trust::allow_uid({uid}) \
         (URL: allow_uid={uid})"
    )
}

fn allow_gid_hint(gid: u32) -> String {
    format!(
        "if group {gid} is trusted, allow it with Config::allow_gid({gid}) or Trust::allow_gid({gid}) \
         (URL: allow_gid={gid})"
    )
}

impl Trust {
    /// Trusts only this process's effective uid (the default).
    pub fn new() -> Trust {
        Trust::default()
    }

    /// Also trusts objects owned by, and peers running as, `uid`.
    pub fn allow_uid(mut self, uid: u32) -> Trust {
        if !self.uids.contains(&uid) {
            self.uids.push(uid);
        }
        self
    }

    /// Also trusts group `gid`: objects whose group is `gid` (whoever owns them, and even if
    /// group-writable, as a group-shared 0660 segment is) and peers whose gid is `gid`.
    /// Trusting a group trusts each of its members.
    pub fn allow_gid(mut self, gid: u32) -> Trust {
        if !self.gids.contains(&gid) {
            self.gids.push(gid);
        }
        self
    }

    /// Accepts the group and other write bits of `mode` (`mode & 0o022`) on any object opened,
    /// whatever its group. A shared-memory channel passes its [`Config::mode`](crate::Config::mode)
    /// here: a channel configured 0666 accepts a segment of mode 0666.
    pub fn allow_writable(mut self, mode: u32) -> Trust {
        self.writable |= mode & 0o022;
        self
    }

    /// The uids trusted besides this process's effective uid.
    pub fn allowed_uids(&self) -> &[u32] {
        &self.uids
    }

    /// The groups trusted.
    pub fn allowed_gids(&self) -> &[u32] {
        &self.gids
    }

    /// The group and other write bits accepted on any object.
    pub fn writable_bits(&self) -> u32 {
        self.writable
    }

    fn uid_ok(&self, uid: u32) -> bool {
        uid == geteuid().as_raw() || self.uids.contains(&uid)
    }

    /// Checks an object's owner and permission bits. `uids` are the ids that own it (the owner;
    /// a System V object has a creator too, who keeps the owner's rights), `gid` its group,
    /// `mode` its permission bits.
    fn check_owner(&self, object: &str, uids: &[u32], gid: u32, mode: u32) -> Result<()> {
        let perm = mode & 0o7777;
        let group_ok = self.gids.contains(&gid);
        let owner = uids[0];
        let untrusted = |reason: String| Error::Untrusted {
            object: object.to_owned(),
            owner,
            mode: Some(perm),
            reason,
        };
        if let Some(&who) = uids.iter().find(|&&u| !self.uid_ok(u)) {
            if !group_ok {
                let role = if who == owner { "owned" } else { "created" };
                return Err(untrusted(format!(
                    "it is {role} by uid {who} (group {gid}, mode {perm:04o}), not by this process's \
                     effective uid {me}: that user could read and change everything passing \
                     through it; {}, or for a group-shared object {}",
                    allow_uid_hint(who),
                    allow_gid_hint(gid),
                    me = geteuid()
                )));
            }
        }
        if perm & 0o002 != 0 && self.writable & 0o002 == 0 {
            return Err(untrusted(format!(
                "it is writable by every user (owner uid {owner}, mode {perm:04o}): anybody could \
                 change what passes through it; remove it and let its creator make it again with a \
                 private mode, or accept it on purpose with Config::mode({perm:#o}) or \
                 Trust::allow_writable({perm:#o})"
            )));
        }
        if perm & 0o020 != 0 && !group_ok && self.writable & 0o020 == 0 {
            return Err(untrusted(format!(
                "it is writable by group {gid} (owner uid {owner}, mode {perm:04o}): any member \
                 could change what passes through it; {}",
                allow_gid_hint(gid)
            )));
        }
        Ok(())
    }

    /// Checks a file opened by name, from `fstat` of the very descriptor that will be used
    /// (so that a rename between the check and the use changes nothing): it must be a `kind`,
    /// owned by this process's effective uid (or an allowed uid or group), and not writable by
    /// group or others beyond what is allowed.
    pub fn check_file(&self, object: &str, kind: FileKind, st: &libc::stat) -> Result<()> {
        let mode = st.st_mode;
        if mode & libc::S_IFMT != kind.mode_bits() {
            return Err(Error::Untrusted {
                object: object.to_owned(),
                owner: st.st_uid,
                mode: Some(mode & 0o7777),
                reason: format!(
                    "it is {} (owner uid {}), not {}: remove it, it is not what its name promises",
                    type_name(mode),
                    st.st_uid,
                    kind.as_str()
                ),
            });
        }
        self.check_owner(object, &[st.st_uid], st.st_gid, mode)
    }

    /// [`check_file`](Self::check_file) on `fstat` of `fd`.
    pub fn check_fd(
        &self,
        object: &str,
        kind: FileKind,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<()> {
        use std::os::fd::AsRawFd;
        let st = nix::sys::stat::fstat(fd.as_raw_fd())
            .map_err(|e| Error::io(format!("fstat {object}"), e))?;
        self.check_file(object, kind, &st)
    }

    /// Checks a System V IPC object from its `IPC_STAT` permissions: the owner and the creator
    /// (who keeps the owner's rights) must both be trusted.
    pub fn check_ipc_perm(&self, object: &str, perm: &libc::ipc_perm) -> Result<()> {
        self.check_owner(
            object,
            &[perm.uid, perm.cuid],
            perm.gid,
            u32::from(perm.mode),
        )
    }

    /// Checks a socket peer's credentials: its uid must be ours or allowed, or its gid allowed.
    pub fn check_peer(&self, object: &str, peer: &PeerCredentials) -> Result<()> {
        if self.uid_ok(peer.uid) || self.gids.contains(&peer.gid) {
            return Ok(());
        }
        Err(Error::Untrusted {
            object: object.to_owned(),
            owner: peer.uid,
            mode: None,
            reason: format!(
                "the peer (pid {}) runs as uid {} (gid {}), not as this process's effective uid \
                 {}; {}, or {}",
                peer.pid,
                peer.uid,
                peer.gid,
                geteuid(),
                allow_uid_hint(peer.uid),
                allow_gid_hint(peer.gid)
            ),
        })
    }
}

/// The credentials the kernel recorded for the peer of a connected Unix socket (`SO_PEERCRED`).
pub(crate) fn peer_credentials(
    fd: std::os::fd::BorrowedFd<'_>,
    what: &str,
) -> Result<PeerCredentials> {
    let cred = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| Error::io(format!("getsockopt(SO_PEERCRED) on {what}"), e))?;
    Ok(PeerCredentials {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(uid: u32, gid: u32, mode: u32) -> libc::stat {
        // SAFETY: `stat` is a plain C struct for which all-zero bytes are a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_mode = mode;
        st
    }

    fn me() -> u32 {
        geteuid().as_raw()
    }

    fn stranger() -> u32 {
        if me() == 65534 {
            65533
        } else {
            65534
        }
    }

    #[test]
    fn own_private_file_is_trusted() {
        let t = Trust::default();
        t.check_file(
            "x",
            FileKind::Regular,
            &stat(me(), 0, libc::S_IFREG | 0o600),
        )
        .unwrap();
        t.check_file(
            "x",
            FileKind::Regular,
            &stat(me(), 0, libc::S_IFREG | 0o644),
        )
        .unwrap();
        t.check_file("x", FileKind::Fifo, &stat(me(), 0, libc::S_IFIFO | 0o600))
            .unwrap();
    }

    #[test]
    fn wrong_type_is_refused() {
        let e = Trust::default()
            .check_file(
                "x",
                FileKind::Regular,
                &stat(me(), 0, libc::S_IFIFO | 0o600),
            )
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("it is a FIFO") && msg.contains("not a regular file"),
            "{msg}"
        );
        let e = Trust::default()
            .check_file("x", FileKind::Fifo, &stat(me(), 0, libc::S_IFREG | 0o600))
            .unwrap_err();
        assert!(matches!(e, Error::Untrusted { .. }));
    }

    #[test]
    fn foreign_owner_is_refused_with_the_way_to_allow_it() {
        let s = stranger();
        let st = stat(s, 4242, libc::S_IFREG | 0o600);
        let e = Trust::default()
            .check_file("/orders", FileKind::Regular, &st)
            .unwrap_err();
        match &e {
            Error::Untrusted {
                owner,
                mode,
                object,
                ..
            } => {
                assert_eq!(*owner, s);
                assert_eq!(*mode, Some(0o600));
                assert_eq!(object, "/orders");
            }
            other => panic!("{other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains(&format!("uid {s}")), "{msg}");
        assert!(msg.contains(&format!("Config::allow_uid({s})")), "{msg}");
        assert!(msg.contains("Config::allow_gid(4242)"), "{msg}");
        Trust::default()
            .allow_uid(s)
            .check_file("/orders", FileKind::Regular, &st)
            .unwrap();
        Trust::default()
            .allow_gid(4242)
            .check_file("/orders", FileKind::Regular, &st)
            .unwrap();
    }

    #[test]
    fn write_bits_need_permission() {
        let t = Trust::default();
        let group = stat(me(), 4242, libc::S_IFREG | 0o660);
        let e = t.check_file("x", FileKind::Regular, &group).unwrap_err();
        assert!(e.to_string().contains("allow_gid(4242)"), "{e}");
        t.clone()
            .allow_gid(4242)
            .check_file("x", FileKind::Regular, &group)
            .unwrap();
        t.clone()
            .allow_writable(0o660)
            .check_file("x", FileKind::Regular, &group)
            .unwrap();
        let world = stat(me(), 4242, libc::S_IFREG | 0o666);
        let e = t
            .clone()
            .allow_gid(4242)
            .check_file("x", FileKind::Regular, &world)
            .unwrap_err();
        assert!(e.to_string().contains("every user"), "{e}");
        assert!(e.to_string().contains("Config::mode(0o666)"), "{e}");
        t.allow_writable(0o666)
            .check_file("x", FileKind::Regular, &world)
            .unwrap();
    }

    #[test]
    fn sysv_creator_counts_as_owner() {
        // SAFETY: `ipc_perm` is a plain C struct for which all-zero bytes are a valid value.
        let mut p: libc::ipc_perm = unsafe { std::mem::zeroed() };
        p.uid = me();
        p.cuid = stranger();
        p.mode = 0o600;
        let e = Trust::default().check_ipc_perm("q", &p).unwrap_err();
        assert!(e.to_string().contains("created by uid"), "{e}");
        p.cuid = me();
        Trust::default().check_ipc_perm("q", &p).unwrap();
    }

    #[test]
    fn peers() {
        let mut p = PeerCredentials::current();
        Trust::default().check_peer("s", &p).unwrap();
        p.uid = stranger();
        p.gid = 4242;
        let e = Trust::default().check_peer("s", &p).unwrap_err();
        assert!(matches!(e, Error::Untrusted { mode: None, .. }));
        assert!(e.to_string().contains(&format!("allow_uid({})", p.uid)));
        Trust::default()
            .allow_uid(p.uid)
            .check_peer("s", &p)
            .unwrap();
        Trust::default()
            .allow_gid(4242)
            .check_peer("s", &p)
            .unwrap();
    }
}
