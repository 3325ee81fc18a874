//! Client and server configurations: the crypto provider, the root
//! certificates, PEM loading.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The crypto provider every config made here uses: rustls' *ring*
/// provider, handed to each config explicitly.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A client config that trusts the operating system's root certificates
/// (via rustls-native-certs; on Linux the distribution's CA bundle, or the
/// files named by `SSL_CERT_FILE` / `SSL_CERT_DIR` when set). The store is
/// loaded once per process; later calls return the same config.
///
/// Fails with a clear error when no usable root certificate can be
/// loaded; [`client_config_webpki_roots`] is the alternative that needs
/// nothing from the system.
pub fn client_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| system_roots().map(client_config_with_roots))
        .clone()
        .map_err(|msg| io::Error::new(io::ErrorKind::NotFound, msg))
}

/// Loads the system root store (what [`client_config`] uses), as a
/// message on failure.
fn system_roots() -> Result<RootCertStore, String> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if added > 0 {
        return Ok(roots);
    }
    let mut msg = String::from("no usable root certificates found in the system certificate store");
    if ignored > 0 {
        msg.push_str(&format!(" ({ignored} could not be parsed)"));
    }
    for e in &loaded.errors {
        msg.push_str(&format!("; {e}"));
    }
    msg.push_str(
        "; install the CA bundle (Debian: ca-certificates), point SSL_CERT_FILE/SSL_CERT_DIR at one, \
         or use greenrt::tls::client_config_webpki_roots()",
    );
    Err(msg)
}

/// A client config that trusts the Mozilla root set compiled into the
/// program (webpki-roots): no dependence on the system's CA bundle, but it
/// changes only when the program is rebuilt.
pub fn client_config_webpki_roots() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            client_config_with_roots(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

/// A client config that trusts exactly `roots` (a private CA, a test
/// certificate), with rustls' safe default protocol versions and no
/// client certificate. To set ALPN or other options, clone the config:
/// `let mut c = (*config).clone(); c.alpn_protocols = ...`.
pub fn client_config_with_roots(roots: RootCertStore) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Parses PEM certificates (e.g. a CA's certificate for a
/// [`RootCertStore`], or a server's chain).
pub fn certificates_from_pem(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid_input(format!("TLS certificate PEM is malformed: {e}")))?;
    if certs.is_empty() {
        return Err(invalid_input(
            "no certificate found in the certificate PEM (expected \"-----BEGIN CERTIFICATE-----\" blocks)",
        ));
    }
    Ok(certs)
}

/// A server config from a PEM certificate chain (leaf first) and a PEM
/// private key (PKCS#8, PKCS#1 or SEC1), with rustls' safe default
/// protocol versions and no client authentication. For ALPN or other
/// options, set fields on it and pass it to [`TlsAcceptor::new`].
pub fn server_config_from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<ServerConfig> {
    let certs = certificates_from_pem(cert_chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        invalid_input(format!(
            "no usable private key found in the key PEM (expected a PKCS#8, PKCS#1 or SEC1 private key block): {e}"
        ))
    })?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid_input(format!("TLS server config rejected: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid_input(format!("TLS certificate and key rejected: {e}")))
}

pub(super) fn invalid_input(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}
