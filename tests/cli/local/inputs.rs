//! Values from literals, files, env files and stdin: taken exactly, and
//! bad input refused before anything is sent.

use serde_json::json;

use crate::common::*;

#[test]
fn value_inputs_are_taken_exactly() {
    let h = Home::new();
    let crlf = h.write("crlf.env", "A=one\r\nB=\"two words\"\r\n");
    let quoted = h.write(
        "q.env",
        "SINGLE='it is $1'\nDQ=\"say \\\"hi\\\"\"\nDOLLAR=\"$HOME and ${PATH}\"\nRAW=$NOT_EXPANDED\nMULTI=\"line1\nline2\"\nEMPTY=\nEQ=a=b=c\n",
    );
    h.run(&[
        "secrets",
        "create",
        "s1",
        "--from-literal=URL=a=b==c",
        "--from-literal=EMPTY=",
        &format!("--from-env-file={crlf}"),
    ])
    .ok();
    let v = h
        .run(&["secrets", "get", "s1", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        v["value"]["data"],
        json!({"URL": "a=b==c", "EMPTY": "", "A": "one", "B": "two words"})
    );

    h.run(&[
        "secrets",
        "create",
        "s2",
        &format!("--from-env-file={quoted}"),
    ])
    .ok();
    let v = h
        .run(&["secrets", "get", "s2", "--value", "-o", "json"])
        .ok()
        .json();
    let d = &v["value"]["data"];
    assert_eq!(d["SINGLE"], "it is $1");
    assert_eq!(d["DQ"], "say \"hi\"");
    assert_eq!(d["DOLLAR"], "$HOME and ${PATH}", "no substitution");
    assert_eq!(d["RAW"], "$NOT_EXPANDED");
    assert_eq!(d["MULTI"], "line1\nline2");
    assert_eq!(d["EMPTY"], "");
    assert_eq!(d["EQ"], "a=b=c");
    // Text dotenv cannot read unambiguously is refused, naming the file.
    let odd = h.write("odd.env", "SINGLE='it''s'\n");
    let r = h
        .run(&["secrets", "create", "s3", &format!("--from-env-file={odd}")])
        .code(2);
    assert!(r.stderr.contains("odd.env"), "{}", r.stderr);

    // -o env reads back identically through --from-env-file.
    let tricky = h.write(
        "tricky.txt",
        "back\\slash \"quotes\" 'single' $dollar #hash\nsecond line\r\nthird",
    );
    h.run(&[
        "secrets",
        "create",
        "src",
        &format!("--from-file=T={tricky}"),
        "--from-literal=PLAIN=x",
    ])
    .ok();
    let env_out = h
        .run(&["secrets", "get", "src", "--value", "-o", "env"])
        .ok()
        .stdout;
    let round = h.write("round.env", &env_out);
    h.run(&[
        "secrets",
        "create",
        "dst",
        &format!("--from-env-file={round}"),
    ])
    .ok();
    let a = h
        .run(&["secrets", "get", "src", "--value", "-o", "json"])
        .ok()
        .json();
    let b = h
        .run(&["secrets", "get", "dst", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(a["value"]["data"], b["value"]["data"]);

    // A trailing newline from a file is kept, with a warning.
    let nl = h.write("nl.txt", "value\n");
    let r = h
        .run(&["secrets", "create", "nl", &format!("--from-file=K={nl}")])
        .ok();
    assert!(r.stderr.contains("--trim-newline"), "{}", r.stderr);
    assert_eq!(
        h.run(&["secrets", "get", "nl", "--key", "K"]).ok().stdout,
        "value\n"
    );
    // The key defaults to the file's base name.
    h.run(&["secrets", "create", "base", &format!("--from-file={nl}")])
        .ok();
    assert_eq!(
        h.run(&["secrets", "get", "base", "--key", "nl.txt"])
            .ok()
            .stdout,
        "value\n"
    );
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let h = Home::new();
    let dup_env = h.write("dup.env", "K=1\n");
    let latin1 = h.write("latin1.bin", [b'c', b'a', b'f', 0xe9]);
    let hash = h.write("hash.env", "PASS=abc#123\n");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--from-literal=K=1".into(),
                format!("--from-env-file={dup_env}"),
            ],
            "given twice",
        ),
        (
            vec!["--from-literal=K=1".into(), "--from-literal=K=2".into()],
            "given twice",
        ),
        (vec!["--from-literal=NOEQUALS".into()], "has no '='"),
        (vec!["--from-literal=bad key=1".into()], "invalid key"),
        (
            vec![format!("--from-file=K={}/missing.txt", h.path().display())],
            "no such file",
        ),
        (vec![format!("--from-file=K={latin1}")], "not UTF-8"),
        (vec![format!("--from-env-file={hash}")], "quote the value"),
        (vec!["--from-file=-".into()], "KEY=-"),
        (vec!["--prompt=K".into()], "terminal"),
        (vec!["--sync-refresh=5s".into()], "between 10s and 7d"),
    ];
    for (args, want) in cases {
        let mut all = vec!["secrets", "create", "x"];
        all.extend(args.iter().map(String::as_str));
        let r = h.run(&all).code(2);
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
    h.run(&["secrets", "create", "Bad_Name"]).code(2);
    // Nothing was created by any of them.
    let list = h.run(&["secrets", "list", "-o", "json"]).ok().json();
    assert_eq!(list["items"], json!([]));
    // …and a failed value file does not even leave an audit event behind.
    let a = h.run(&["audit", "list", "-o", "json"]).ok().json();
    assert!(
        a["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["body"]["action"] != "create")
    );
}

#[test]
fn go_cli_expectations_on_values_env_files_and_projections() {
    let h = Home::new();
    // A secret without values: the document, with empty data, exit 0.
    h.run(&["secrets", "create", "empty"]).ok();
    let doc = h
        .run(&["secrets", "get", "empty", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(doc["value"]["data"], serde_json::json!({}));
    h.run(&["secrets", "get", "empty", "--key", "K"]).code(3);

    // Env files: whatever dotenv would change silently is an error naming
    // the file, the line and the fix; nothing is created.
    for (text, line, why) in [
        ("PASSWORD=abc   \n", 1, "spaces around it"),
        ("A=1\nNOTE=hello # x\n", 2, "contains '#'"),
        ("A=1\nA=2\n", 2, "already set on line 1"),
    ] {
        let f = h.write("bad.env", text);
        let r = h
            .run(&["secrets", "create", "fromenv", "--from-env-file", &f])
            .code(2);
        assert!(
            r.stderr.contains(&format!("{f}: line {line}:")) && r.stderr.contains(why),
            "{text:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("quote the value") || r.stderr.contains("remove the duplicate"),
            "{}",
            r.stderr
        );
    }
    h.run(&["secrets", "get", "fromenv"]).code(3);
    let f = h.write("good.env", "PASSWORD='abc   '\nNOTE=\"hello # x\"\n");
    h.run(&["secrets", "create", "fromenv", "--from-env-file", &f])
        .ok();
    let v = h
        .run(&["secrets", "get", "fromenv", "--value", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        v["value"]["data"],
        serde_json::json!({"PASSWORD": "abc   ", "NOTE": "hello # x"})
    );

    // Two managed secrets never project into one Kubernetes Secret.
    h.run(&["secrets", "create", "app"]).ok();
    let r = h
        .run(&["secrets", "create", "app2", "--sync-target", "app"])
        .code(6);
    assert!(
        r.stderr
            .contains("already the projection of managed secret \"app\""),
        "{}",
        r.stderr
    );
    h.run(&["secrets", "create", "app3", "--sync-disabled"])
        .ok();
    let r = h
        .run(&[
            "secrets",
            "sync",
            "app3",
            "--enabled",
            "on",
            "--target",
            "app",
        ])
        .code(6);
    assert!(r.stderr.contains("\"app\""), "{}", r.stderr);
}
