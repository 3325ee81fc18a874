//! The hosts file (`/etc/hosts`, hosts(5)), consulted by the native
//! resolver before any DNS query, like glibc's `files` NSS module and
//! c-ares' `ares_gethostbyname_file`.
//!
//! The file is parsed on first use and again whenever its modification
//! time, size or inode changes (a `stat` per lookup), so edits take effect
//! without a restart, as they do for glibc.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One parsed hosts file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Hosts {
    /// Lower-cased name (without a trailing dot) to its addresses in file
    /// order, duplicates removed (glibc's `multi on`).
    by_name: HashMap<String, Vec<IpAddr>>,
    /// Address to the first name listed for it (its canonical name).
    by_addr: HashMap<IpAddr, String>,
}

impl Hosts {
    /// Parses the text of a hosts file. Lines that do not start with an
    /// IP address are skipped, as glibc does.
    pub(crate) fn parse(text: &str) -> Hosts {
        let mut h = Hosts::default();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_ascii_whitespace();
            let Some(addr) = fields.next() else { continue };
            // A scoped IPv6 address ("fe80::1%eth0") keeps only its address.
            let Ok(ip) = addr.split('%').next().unwrap_or(addr).parse::<IpAddr>() else {
                continue;
            };
            for name in fields {
                let key = normalize(name);
                if key.is_empty() {
                    continue;
                }
                let addrs = h.by_name.entry(key).or_default();
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
                h.by_addr
                    .entry(ip)
                    .or_insert_with(|| name.trim_end_matches('.').to_string());
            }
        }
        h
    }

    /// The addresses listed for `name` (any ASCII case, trailing dot or
    /// not).
    pub(crate) fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.by_name.get(&normalize(name)).map(|v| v.as_slice())
    }

    /// The first name listed for `ip`.
    pub(crate) fn reverse(&self, ip: IpAddr) -> Option<&str> {
        self.by_addr.get(&ip).map(|s| s.as_str())
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What identifies one version of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    ino: u64,
}

/// A hosts file at a path, re-read when it changes.
#[derive(Debug)]
pub(crate) struct HostsFile {
    path: Option<PathBuf>,
    cache: Mutex<Option<(Option<Stamp>, Arc<Hosts>)>>,
}

impl HostsFile {
    /// The file at `path`; `None` means no hosts file at all.
    pub(crate) fn new(path: Option<PathBuf>) -> HostsFile {
        HostsFile {
            path,
            cache: Mutex::new(None),
        }
    }

    /// The current contents (empty when there is no file or it cannot be
    /// read, as for glibc).
    pub(crate) fn get(&self) -> Arc<Hosts> {
        let Some(path) = &self.path else {
            return Arc::new(Hosts::default());
        };
        let stamp = std::fs::metadata(path).ok().map(|m| Stamp {
            modified: m.modified().ok(),
            len: m.len(),
            ino: m.ino(),
        });
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, hosts)) = &*cache {
            if *s == stamp {
                return hosts.clone();
            }
        }
        let hosts = match stamp {
            Some(_) => match std::fs::read(path) {
                Ok(bytes) => Hosts::parse(&String::from_utf8_lossy(&bytes)),
                Err(_) => Hosts::default(),
            },
            None => Hosts::default(),
        };
        let hosts = Arc::new(hosts);
        *cache = Some((stamp, hosts.clone()));
        hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_glibc() {
        let h = Hosts::parse(
            "127.0.0.1\tlocalhost\n\
             # comment line\n\
             ::1 localhost ip6-localhost  # trailing comment\n\
             192.0.2.7 Web.Example.  web www\n\
             192.0.2.8 web\n\
             not-an-ip ignored\n\
             fe80::1%lo linklocal\n",
        );
        assert_eq!(
            h.lookup("LOCALHOST").unwrap(),
            &["127.0.0.1".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]
        );
        assert_eq!(
            h.lookup("web.example.com."),
            None,
            "no search-domain games in the hosts file"
        );
        assert_eq!(
            h.lookup("web.example").unwrap(),
            &["192.0.2.7".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            h.lookup("web").unwrap(),
            &["192.0.2.7".parse::<IpAddr>().unwrap(), "192.0.2.8".parse().unwrap()]
        );
        assert_eq!(h.lookup("ignored"), None);
        assert_eq!(h.lookup("comment"), None);
        assert_eq!(h.lookup("linklocal").unwrap(), &["fe80::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(h.reverse("192.0.2.7".parse().unwrap()), Some("Web.Example"));
        assert_eq!(h.reverse("::1".parse().unwrap()), Some("localhost"));
        assert_eq!(h.reverse("192.0.2.99".parse().unwrap()), None);
    }

    #[test]
    fn reloads_when_the_file_changes() {
        let dir = std::env::temp_dir().join(format!("greenrt-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, "127.0.0.2 one\n").unwrap();
        let f = HostsFile::new(Some(path.clone()));
        assert!(f.get().lookup("one").is_some());
        std::fs::write(&path, "127.0.0.3 two two-more\n").unwrap();
        let h = f.get();
        assert!(h.lookup("one").is_none());
        assert!(h.lookup("two-more").is_some());
        std::fs::remove_file(&path).unwrap();
        assert!(f.get().lookup("two").is_none());
        let _ = std::fs::remove_dir(&dir);
    }
}
