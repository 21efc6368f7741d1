//! Throwaway TLS material for tests.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

/// A fresh self-signed certificate for `localhost`: a server config using
/// it and a client config trusting it (and nothing else).
pub fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// Runs the client side of a TLS handshake for `localhost` over `io`.
pub async fn tls_connect<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    client: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<S> {
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(client)
        .connect(name, io)
        .await
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LineClient;

    #[tokio::test]
    async fn the_client_config_trusts_the_server_config() {
        let (server, client) = tls_pair();
        let (ours, theirs) = tokio::io::duplex(16 * 1024);
        let accept = tokio::spawn(async move {
            let tls = tokio_rustls::TlsAcceptor::from(server).accept(theirs).await;
            let mut peer = LineClient::new(tls.unwrap());
            peer.send_line("over TLS").await;
        });
        let mut c = LineClient::new(tls_connect(ours, client).await);
        assert_eq!(c.line().await, "over TLS");
        accept.await.unwrap();
    }
}
