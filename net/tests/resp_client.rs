//! RESP client against a real `redis-server` (started per test on a free loopback port) and
//! against small misbehaving servers (oversized, malformed and missing replies).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;

use net::resp::process::RedisProcess;
use net::resp::{Reply, RespClient, RespConfig, RespError, Script};

fn block_on<F: Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn redis() -> (tempfile::TempDir, RedisProcess) {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisProcess::start(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, server)
}

#[test]
fn commands_pipelines_and_scripts_against_redis_server() {
    let (_dir, mut server) = redis();
    let addr = server.addr();
    block_on(async move {
        let mut c = RespClient::connect(addr, RespConfig::default())
            .await
            .unwrap();
        assert_eq!(
            c.call(&["PING".into()]).await.unwrap(),
            Reply::SimpleString(b"PONG".to_vec())
        );
        c.call(&["SET".into(), "k".into(), b"v\r\n\0binary".as_slice().into()])
            .await
            .unwrap();
        assert_eq!(
            c.call(&["GET".into(), "k".into()]).await.unwrap(),
            Reply::BulkString(b"v\r\n\0binary".to_vec())
        );
        assert_eq!(
            c.call(&["GET".into(), "missing".into()]).await.unwrap(),
            Reply::Null
        );
        // Error replies are errors for `call`, and the connection stays usable.
        let err = c
            .call(&["INCRBY".into(), "k".into(), 1i64.into()])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RespError::Server { message } if message.contains("not an integer"))
        );
        assert!(!err.breaks_connection() && c.is_connected());

        // A pipeline: 100 commands, one write, replies in order.
        for i in 0..100i64 {
            c.queue(&["INCRBY".into(), "n".into(), i.into()]).unwrap();
        }
        let replies = c.flush().await.unwrap();
        let expect: Vec<Reply> = (0..100i64).map(|i| Reply::Integer((0..=i).sum())).collect();
        assert_eq!(replies, expect);

        // Scripts: loaded on first use, reloaded once after SCRIPT FLUSH (NOSCRIPT).
        let mut s = Script::new("return tonumber(ARGV[1]) + redis.call('INCRBY', KEYS[1], 1)");
        let r = c
            .eval(&mut s, &["n".into()], &[1000i64.into()])
            .await
            .unwrap();
        assert_eq!(r, Reply::Integer(1000 + 4951));
        assert_eq!(s.loads, 1);
        c.call(&["SCRIPT".into(), "FLUSH".into()]).await.unwrap();
        let r = c.eval(&mut s, &["n".into()], &[0i64.into()]).await.unwrap();
        assert_eq!(r, Reply::Integer(4952));
        assert_eq!(s.loads, 2);

        // A restarted server loses scripts and data: reconnect, NOSCRIPT -> reload.
        server.restart().unwrap();
        assert!(c.call(&["PING".into()]).await.is_err());
        c.reconnect().await.unwrap();
        let r = c.eval(&mut s, &["n".into()], &[0i64.into()]).await.unwrap();
        assert_eq!(r, Reply::Integer(1));
        assert_eq!(s.loads, 3);
    });
}

#[test]
fn pipeline_depth_is_bounded() {
    let (_dir, server) = redis();
    let addr = server.addr();
    block_on(async move {
        let cfg = RespConfig {
            max_pipeline: 3,
            ..RespConfig::default()
        };
        let mut c = RespClient::connect(addr, cfg).await.unwrap();
        for _ in 0..3 {
            c.queue(&["PING".into()]).unwrap();
        }
        assert!(matches!(
            c.queue(&["PING".into()]),
            Err(RespError::PipelineFull { limit: 3 })
        ));
        assert_eq!(c.flush().await.unwrap().len(), 3);
        c.queue(&["PING".into()]).unwrap();
    });
}

/// A one-connection server that reads one command and answers `reply` (or nothing).
fn fake_server(reply: Option<Vec<u8>>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
        if let Some(r) = reply {
            let _ = s.write_all(&r);
        }
        // Keep the socket open until the client is gone.
        let _ = s.read(&mut buf);
    });
    addr
}

#[test]
fn oversized_reply_is_refused_not_buffered() {
    let mut huge = b"$100000000\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 70_000));
    let addr = fake_server(Some(huge));
    block_on(async move {
        let cfg = RespConfig {
            max_reply_bytes: 64 * 1024,
            ..RespConfig::default()
        };
        let mut c = RespClient::connect(addr, cfg).await.unwrap();
        let err = c.call(&["GET".into(), "big".into()]).await.unwrap_err();
        assert!(
            matches!(err, RespError::ReplyTooLarge { limit: 65536, .. }),
            "{err}"
        );
        assert!(!c.is_connected());
        assert!(matches!(
            c.call(&["PING".into()]).await,
            Err(RespError::Broken { .. })
        ));
    });
}

#[test]
fn malformed_reply_is_a_protocol_error() {
    let addr = fake_server(Some(b"?what\r\n".to_vec()));
    block_on(async move {
        let mut c = RespClient::connect(addr, RespConfig::default())
            .await
            .unwrap();
        let err = c.call(&["PING".into()]).await.unwrap_err();
        assert!(matches!(err, RespError::Protocol { .. }), "{err}");
        assert!(!err.retryable());
    });
}

#[test]
fn silent_server_times_out() {
    let addr = fake_server(None);
    block_on(async move {
        let cfg = RespConfig {
            io_timeout_ms: 200,
            ..RespConfig::default()
        };
        let mut c = RespClient::connect(addr, cfg).await.unwrap();
        let err = c.call(&["PING".into()]).await.unwrap_err();
        assert!(matches!(err, RespError::Timeout { ms: 200, .. }), "{err}");
        assert!(err.retryable() && !c.is_connected());
    });
}

#[test]
fn refused_connection_names_the_address() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    block_on(async move {
        let err = RespClient::connect(addr, RespConfig::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        assert!(err.retryable());
    });
}
