//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::cell::Cell;
use std::process::{Command, Output};
use std::rc::Rc;
use std::time::Duration;

/// One millisecond, the unit the tests' sleeps and timeouts count in.
pub const MS: Duration = Duration::from_millis(1);

/// Sets its flag when dropped: proves a greenlet's stack was unwound (or
/// an item was dropped).
pub struct SetOnDrop(pub Rc<Cell<bool>>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Re-runs this test binary with only `test_name`, with `GREENRT_CHILD=1`
/// and the extra environment, so a test can observe a whole process (its
/// stderr, its exit status) from outside.
pub fn run_child(test_name: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env("GREENRT_CHILD", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Runs `test_name` as a child (see [`run_child`]) and fails unless it
/// exits successfully having printed `marker` on stdout.
pub fn assert_child_prints(test_name: &str, env: &[(&str, &str)], marker: &str) {
    let out = run_child(test_name, env);
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && so.contains(marker),
        "status {:?}\n{so}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// True inside a child started by `run_child`.
pub fn is_child() -> bool {
    std::env::var_os("GREENRT_CHILD").is_some()
}

/// A test CA and a `localhost` certificate it signed: the server's
/// acceptor and a client config that trusts the CA.
pub fn test_pki() -> (greenrt::tls::TlsAcceptor, std::sync::Arc<greenrt::tls::ClientConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "greenrt server test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let acceptor =
        greenrt::tls::TlsAcceptor::from_pem((leaf.pem() + &ca.pem()).as_bytes(), leaf_key.serialize_pem().as_bytes())
            .unwrap();
    let mut roots = greenrt::tls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    (acceptor, greenrt::tls::client_config_with_roots(roots))
}

/// xorshift64*: deterministic pseudo-random numbers and bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
