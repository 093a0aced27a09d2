//! TLS to PostgreSQL, against a server of the test's own: `ssl = on`, TLS-only (`hostssl`)
//! access, a CA, a server certificate for `localhost` and a client certificate made here.
//! Each `sslmode` connects, checks and refuses as libpq's does.

use octavia::config::DatabaseConfig;
use octavia_dev::cluster::{Cluster, Durability, chown_to_postgres};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A CA of the test's own.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` (or, for a client, the common name `user`) signed by `ca`:
/// (certificate PEM, key PEM).
fn issued(ca: &CertifiedIssuer<'_, KeyPair>, names: &[&str], user: &str) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, user);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

async fn connect(url: &str) -> Result<bool, String> {
    let client = octavia::db::connect(url)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn every_sslmode_connects_checks_and_refuses_as_libpq_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pg");
    let cluster = Cluster::start(&data, Durability::Fast).unwrap();
    let data = data.canonicalize().unwrap();
    let ours = ca("Octavia test CA");
    let (server_cert, server_key) = issued(&ours, &["localhost"], "localhost");
    write(&data.join("server.crt"), &server_cert, 0o644);
    write(&data.join("server.key"), &server_key, 0o600);
    write(&data.join("root.crt"), &ours.pem(), 0o644);
    for file in ["server.crt", "server.key", "root.crt"] {
        chown_to_postgres(&data.join(file)).unwrap();
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .unwrap()
        .write_all(
            b"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
              ssl_ca_file = 'root.crt'\n",
        )
        .unwrap();
    // TCP only with TLS; `certuser` only with a client certificate the CA signed.
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\n\
         hostssl all certuser 127.0.0.1/32 cert\n\
         hostssl all all 127.0.0.1/32 trust\n\
         hostssl all all ::1/128 trust\n",
    )
    .unwrap();
    cluster.restart().unwrap();

    // Files the client reads: the CA, another CA, a client certificate for certuser.
    let client_dir = dir.path().join("client");
    std::fs::create_dir(&client_dir).unwrap();
    let ca_file = client_dir.join("ca.crt");
    write(&ca_file, &ours.pem(), 0o644);
    let other_file = client_dir.join("other.crt");
    write(&other_file, &ca("Someone else's CA").pem(), 0o644);
    let (client_cert, client_key) = issued(&ours, &[], "certuser");
    let (cert_file, key_file) = (client_dir.join("c.crt"), client_dir.join("c.key"));
    write(&cert_file, &client_cert, 0o644);
    write(&key_file, &client_key, 0o600);
    let port = cluster
        .url("postgres")
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let url = |host: &str, user: &str, params: &str| {
        format!("postgres://{user}@{host}:{port}/postgres?{params}")
    };
    let (ca_path, other_path) = (ca_file.display(), other_file.display());

    assert_eq!(
        connect(&url("127.0.0.1", "postgres", "sslmode=require")).await,
        Ok(true)
    );
    assert_eq!(
        connect(&url("127.0.0.1", "postgres", "")).await,
        Ok(true),
        "prefer"
    );
    let full = format!("sslmode=verify-full&sslrootcert={ca_path}");
    assert_eq!(
        connect(&url("localhost", "postgres", &full)).await,
        Ok(true)
    );
    let e = connect(&url("127.0.0.1", "postgres", &full))
        .await
        .unwrap_err();
    assert!(
        e.contains("certificate") && e.contains("not valid for name"),
        "{e}"
    );
    let ca_only = format!("sslmode=verify-ca&sslrootcert={ca_path}");
    assert_eq!(
        connect(&url("127.0.0.1", "postgres", &ca_only)).await,
        Ok(true)
    );
    let other = format!("sslmode=verify-full&sslrootcert={other_path}");
    let e = connect(&url("localhost", "postgres", &other))
        .await
        .unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    let e = connect(&url("127.0.0.1", "postgres", "sslmode=disable"))
        .await
        .unwrap_err();
    assert!(
        e.contains("no encryption"),
        "pg_hba refuses plain connections: {e}"
    );

    // Client certificates: required for certuser, and accepted when the CA signed them.
    let admin = octavia::db::connect(&url("127.0.0.1", "postgres", "sslmode=require"))
        .await
        .unwrap();
    admin
        .batch_execute("CREATE ROLE certuser LOGIN")
        .await
        .unwrap();
    let e = connect(&url("localhost", "certuser", &full))
        .await
        .unwrap_err();
    assert!(e.contains("certificate"), "{e}");
    let with_cert = format!(
        "{full}&sslcert={}&sslkey={}",
        cert_file.display(),
        key_file.display()
    );
    assert_eq!(
        connect(&url("localhost", "certuser", &with_cert)).await,
        Ok(true)
    );

    // The [database] settings give the same to a URL without them: a pool connects.
    let config = DatabaseConfig {
        url: format!("postgres://postgres@localhost:{port}/postgres"),
        sslmode: "verify-full".into(),
        sslrootcert: ca_path.to_string(),
        pool_size: 2,
        ..DatabaseConfig::default()
    };
    let pool = octavia::db::pool(&config).unwrap();
    let client = pool.get().await.unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
    drop(client);
    cluster.stop().unwrap();
}
