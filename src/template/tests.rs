use serde_json::{json, Value};

use super::*;

fn vars() -> Value {
    json!({
        "name": "web",
        "port": 8080,
        "ports": [80, 443],
        "empty": "",
        "flag": true,
        "nothing": null,
        "user": {"name": "deploy", "shell": "/bin/bash"},
        "users": [
            {"name": "alice", "admin": true},
            {"name": "bob", "admin": false},
        ],
        "changed_result": {"changed": true, "failed": false},
        "ok_result": {"changed": false},
        "failed_result": {"failed": true, "changed": false},
        "skipped_result": {"skipped": true, "changed": false},
        "loop_result": {"results": [{"changed": false}, {"changed": true}]},
        "text": "line one\nline two\n",
        "version": "1.22.1-9+deb12u1",
    })
}

/// Renders each template and compares the output.
fn assert_renders(cases: &[(&str, &str)]) {
    let templar = Templar::new();
    let vars = vars();
    for (template, expected) in cases {
        match templar.render_str(template, &vars) {
            Ok(rendered) => assert_eq!(rendered, *expected, "template {template:?}"),
            Err(err) => panic!("template {template:?} failed: {}", err.message),
        }
    }
}

/// Renders each template and checks that the error message contains the expected text.
fn assert_fails(cases: &[(&str, &str)]) {
    let templar = Templar::new();
    let vars = vars();
    for (template, expected) in cases {
        match templar.render_str(template, &vars) {
            Ok(rendered) => {
                panic!("template {template:?} rendered {rendered:?}, expected an error")
            }
            Err(err) => assert!(
                err.message.contains(expected),
                "template {template:?}: message {:?} does not contain {expected:?}",
                err.message
            ),
        }
    }
}

#[test]
fn render_str_plain_text_unchanged() {
    assert_renders(&[
        ("no templating here", "no templating here"),
        ("", ""),
        ("trailing newline\n", "trailing newline\n"),
        ("{ braces } alone", "{ braces } alone"),
    ]);
}

#[test]
fn render_str_substitutes_variables() {
    assert_renders(&[
        ("{{ name }}", "web"),
        ("{{ name }}:{{ port }}", "web:8080"),
        ("{{ user.name }}", "deploy"),
        ("{{ user['shell'] }}", "/bin/bash"),
        ("{{ ports[1] }}", "443"),
        ("{{ name ~ '-' ~ port }}", "web-8080"),
        ("{{ name }}\n", "web\n"),
    ]);
}

#[test]
fn render_str_prints_python_style() {
    assert_renders(&[
        ("{{ flag }}", "True"),
        ("{{ not flag }}", "False"),
        ("{{ nothing }}", "None"),
        ("{{ ports }}", "[80, 443]"),
        ("{{ user }}", "{'name': 'deploy', 'shell': '/bin/bash'}"),
        ("{{ [\"it's\"] }}", "[\"it's\"]"),
    ]);
}

#[test]
fn render_str_control_structures() {
    assert_renders(&[
        ("{% if flag %}yes{% else %}no{% endif %}", "yes"),
        (
            "{% for p in ports %}{{ loop.index }}={{ p }} {% endfor %}",
            "1=80 2=443 ",
        ),
        // trim_blocks removes the newline after a block tag, as Ansible's template module does.
        ("{% for p in ports %}\n{{ p }}\n{% endfor %}\n", "80\n443\n"),
        // lstrip_blocks is off, so indentation before a block tag stays.
        ("  {% if flag %}\nx\n  {% endif %}\n", "  x\n  "),
        ("a {#- comment #} b", "a b"),
        ("{%- if flag -%}  x  {%- endif %}", "x"),
    ]);
}

#[test]
fn undefined_variable_named() {
    let templar = Templar::new();
    let vars = vars();
    let cases = [
        ("{{ missing }}", "undefined variable `missing`"),
        ("{{ user.missing }}", "undefined variable `user.missing`"),
        ("x {{ missing | upper }}", "undefined variable `missing`"),
        (
            "{% if missing %}x{% endif %}",
            "undefined variable `missing`",
        ),
        (
            "{% for i in missing %}x{% endfor %}",
            "undefined variable `missing`",
        ),
        ("{{ missing | mandatory }}", "undefined variable `missing`"),
    ];
    for (template, expected) in cases {
        let err = templar.render_str(template, &vars).unwrap_err();
        assert!(
            err.message.starts_with(expected),
            "template {template:?}: message {:?}",
            err.message
        );
    }
}

#[test]
fn undefined_variable_in_eval_named() {
    let templar = Templar::new();
    let vars = vars();
    for (expr, expected) in [
        ("missing", "undefined variable `missing`"),
        ("user.missing", "undefined variable `user.missing`"),
        ("missing == 1", "undefined variable `missing`"),
        ("flag and missing", "undefined variable `missing`"),
    ] {
        let err = templar.eval_bool(expr, &vars).unwrap_err();
        assert!(
            err.message.starts_with(expected),
            "expression {expr:?}: message {:?}",
            err.message
        );
    }
}

#[test]
fn undefined_checks_still_work() {
    assert_renders(&[
        ("{{ missing is defined }}", "False"),
        ("{{ missing is undefined }}", "True"),
        ("{{ user.missing is defined }}", "False"),
        ("{{ missing | default('x') }}", "x"),
        ("{{ missing | d('x') }}", "x"),
        ("{{ user.missing | default(5) }}", "5"),
        ("{{ empty | default('x') }}", ""),
        ("{{ empty | default('x', true) }}", "x"),
        (
            "{{ empty | d('x', boolean=true) if false else empty | d('x', true) }}",
            "x",
        ),
    ]);
}

#[test]
fn error_position_reported() {
    let templar = Templar::new();
    let vars = vars();

    let err = templar
        .render_str("line one\nline two {{ missing }}\n", &vars)
        .unwrap_err();
    assert_eq!(err.line, Some(2));
    assert_eq!(err.column, Some(13));
    assert_eq!(err.range, Some(21..28));

    let err = templar
        .render_str("a\nb\n{{ name | nosuchfilter }}", &vars)
        .unwrap_err();
    assert_eq!(err.line, Some(3));
    assert!(
        err.message
            .starts_with("unknown filter `nosuchfilter`: check its spelling"),
        "message {:?}",
        err.message
    );

    let err = templar
        .render_str("{{ name is nosuchtest }}", &vars)
        .unwrap_err();
    assert!(
        err.message.starts_with("unknown test `nosuchtest`"),
        "message {:?}",
        err.message
    );

    let err = templar.render_str("{{ nosuchfunc() }}", &vars).unwrap_err();
    assert!(
        err.message.starts_with("unknown function `nosuchfunc`"),
        "message {:?}",
        err.message
    );

    let err = templar.render_str("ok\n{% if %}", &vars).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert!(
        err.message.starts_with("syntax error"),
        "message {:?}",
        err.message
    );
}

#[test]
fn error_position_inside_single_expression() {
    let templar = Templar::new();
    let err = templar
        .render_value(&json!("  {{ missing }}"), &vars())
        .unwrap_err();
    assert_eq!(err.line, Some(1));
    assert_eq!(err.column, Some(6));
    assert_eq!(err.range, Some(5..12));
}

#[test]
fn render_value_native_types() {
    let templar = Templar::new();
    let vars = vars();
    let cases = [
        (json!("{{ ports }}"), json!([80, 443])),
        (json!("{{ port }}"), json!(8080)),
        (json!(" {{ flag }} "), json!(" True ")),
        (json!("{{ port }}\n"), json!("8080\n")),
        (json!("{{ nothing }}"), json!(null)),
        (
            json!("{{ user }}"),
            json!({"name": "deploy", "shell": "/bin/bash"}),
        ),
        (json!("{{- port -}}"), json!(8080)),
        (json!("{{ port }}/tcp"), json!("8080/tcp")),
        (json!("{{ port }}{{ port }}"), json!("80808080")),
        (json!(42), json!(42)),
        (
            json!(["{{ name }}", 1, {"k": "{{ port + 1 }}"}]),
            json!(["web", 1, {"k": 8081}]),
        ),
        (json!({"{{ name }}_key": "v"}), json!({"web_key": "v"})),
    ];
    for (input, expected) in cases {
        let rendered = templar.render_value(&input, &vars).unwrap();
        assert_eq!(rendered, expected, "input {input}");
    }
}

#[test]
fn render_value_drops_omitted() {
    let templar = Templar::new();
    let vars = vars();
    let input = json!({
        "path": "/etc/x",
        "mode": "{{ missing_mode | default(omit) }}",
        "owner": "{{ name | default(omit) }}",
        "list": ["a", "{{ omit }}", "b"],
        "nested": {"group": "{{ omit }}"},
    });
    let rendered = templar.render_value(&input, &vars).unwrap();
    assert_eq!(
        rendered,
        json!({"path": "/etc/x", "owner": "web", "list": ["a", "b"], "nested": {}})
    );
}

#[test]
fn omit_placeholder_unique_per_templar() {
    let first = Templar::new();
    let second = Templar::new();
    assert!(first
        .omit_placeholder()
        .starts_with("__omit_place_holder__"));
    assert_ne!(first.omit_placeholder(), second.omit_placeholder());
    assert_eq!(
        first.render_str("{{ omit }}", &vars()).unwrap(),
        first.omit_placeholder()
    );
}

#[test]
fn eval_returns_json() {
    let templar = Templar::new();
    let vars = vars();
    let cases = [
        ("ports", json!([80, 443])),
        ("port + 1", json!(8081)),
        ("name == 'web'", json!(true)),
        (
            "users | map(attribute='name') | list",
            json!(["alice", "bob"]),
        ),
        ("{'a': port}", json!({"a": 8080})),
        ("nothing", json!(null)),
        ("{{ ports }}", json!([80, 443])),
        ("True", json!(true)),
        ("None", json!(null)),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            templar.eval(expr, &vars).unwrap(),
            expected,
            "expression {expr:?}"
        );
    }
}

#[test]
fn eval_bool_truthiness() {
    let templar = Templar::new();
    let vars = vars();
    let cases = [
        ("flag", true),
        ("not flag", false),
        ("'no'", true),
        ("empty", false),
        ("ports", true),
        ("[]", false),
        ("port > 80 and name == 'web'", true),
        ("{{ port == 8080 }}", true),
        ("  {{ flag }}  ", true),
        ("'no' | bool", false),
        ("changed_result is changed", true),
        ("missing is defined", false),
        ("missing is not defined or missing", true),
        ("True", true),
        ("False", false),
        ("true", true),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            templar.eval_bool(expr, &vars).unwrap(),
            expected,
            "expression {expr:?}"
        );
    }
}

#[test]
fn render_file_names_file_in_error() {
    let templar = Templar::new();
    let rendered = templar
        .render_file("motd.j2", "Welcome to {{ name }}\n", &vars())
        .unwrap();
    assert_eq!(rendered, "Welcome to web\n");

    let err = templar
        .render_file("motd.j2", "Welcome\n{{ missing }}\n", &vars())
        .unwrap_err();
    assert!(
        err.message
            .starts_with("motd.j2: undefined variable `missing`"),
        "{}",
        err.message
    );
    assert_eq!(err.line, Some(2));
}

#[test]
fn filter_bool() {
    assert_renders(&[
        ("{{ 'yes' | bool }}", "True"),
        ("{{ 'Yes' | bool }}", "True"),
        ("{{ 'on' | bool }}", "True"),
        ("{{ 'true' | bool }}", "True"),
        ("{{ '1' | bool }}", "True"),
        ("{{ 'y' | bool }}", "True"),
        ("{{ 1 | bool }}", "True"),
        ("{{ true | bool }}", "True"),
        ("{{ 'no' | bool }}", "False"),
        ("{{ 'off' | bool }}", "False"),
        ("{{ 'false' | bool }}", "False"),
        ("{{ '0' | bool }}", "False"),
        ("{{ 'n' | bool }}", "False"),
        ("{{ '' | bool }}", "False"),
        ("{{ 'banana' | bool }}", "False"),
        ("{{ 0 | bool }}", "False"),
        ("{{ none | bool }}", "False"),
    ]);
    assert_fails(&[("{{ missing | bool }}", "undefined variable `missing`")]);
}

#[test]
fn filter_default() {
    assert_renders(&[
        ("{{ missing | default('a') }}", "a"),
        ("{{ name | default('a') }}", "web"),
        ("{{ nothing | default('a') }}", "None"),
        ("{{ nothing | default('a', true) }}", "a"),
        ("{{ '' | d('a', true) }}", "a"),
    ]);
}

#[test]
fn filter_string_case_and_join() {
    assert_renders(&[
        ("{{ 'MiXed' | lower }}", "mixed"),
        ("{{ 'MiXed' | upper }}", "MIXED"),
        ("{{ ports | join(',') }}", "80,443"),
        ("{{ ['a', 'b'] | join }}", "ab"),
        ("{{ flag | string }}", "True"),
        ("{{ 5 | string }}", "5"),
        ("{{ ports | string }}", "[80, 443]"),
        ("{{ '  pad  ' | trim }}", "pad"),
        ("{{ 'a-b-c' | replace('-', '+') }}", "a+b+c"),
        ("{{ 'a b  c' | split | list }}", "['a', 'b', 'c']"),
        ("{{ 'a,b' | split(',') | list }}", "['a', 'b']"),
        ("{{ text | splitlines }}", "['line one', 'line two']"),
    ]);
}

#[test]
fn filter_int_and_float() {
    assert_renders(&[
        ("{{ '42' | int }}", "42"),
        ("{{ '42' | int + 1 }}", "43"),
        ("{{ 'abc' | int }}", "0"),
        ("{{ 'abc' | int(7) }}", "7"),
        ("{{ 'abc' | int(default=9) }}", "9"),
        ("{{ '0x1f' | int(base=16) }}", "31"),
        ("{{ 3.9 | int }}", "3"),
        ("{{ '2.5' | float }}", "2.5"),
        ("{{ 'abc' | float }}", "0.0"),
        ("{{ 'abc' | float(1.5) }}", "1.5"),
    ]);
}

#[test]
fn filter_json() {
    assert_renders(&[
        (
            "{{ user | to_json }}",
            r#"{"name": "deploy", "shell": "/bin/bash"}"#,
        ),
        ("{{ ports | to_json }}", "[80, 443]"),
        ("{{ 'x' | to_json }}", r#""x""#),
        (
            "{{ {'b': 1, 'a': [1, 2]} | to_nice_json }}",
            "{\n    \"a\": [\n        1,\n        2\n    ],\n    \"b\": 1\n}",
        ),
        (
            "{{ {'b': 1} | to_nice_json(indent=2) }}",
            "{\n  \"b\": 1\n}",
        ),
        ("{{ ('{\"a\": [1, 2]}' | from_json).a[1] }}", "2"),
    ]);
    assert_fails(&[
        ("{{ '{oops' | from_json }}", "`from_json` got invalid JSON"),
        ("{{ missing | to_json }}", "undefined variable `missing`"),
    ]);
}

#[test]
fn filter_yaml() {
    assert_renders(&[
        ("{{ user | to_yaml }}", "name: deploy\nshell: /bin/bash\n"),
        ("{{ ports | to_nice_yaml }}", "- 80\n- 443\n"),
        ("{{ {'a': 'yes'} | to_yaml }}", "a: \"yes\"\n"),
        ("{{ ('a: 1\\nb: [x, y]' | from_yaml).b[1] }}", "y"),
        ("{{ ('a: yes' | from_yaml).a }}", "yes"),
        ("{{ ('a: true' | from_yaml).a }}", "True"),
        (
            "{{ '---\\na: 1\\n---\\nb: 2\\n' | from_yaml_all | length }}",
            "2",
        ),
    ]);
    assert_fails(&[("{{ 'a: [' | from_yaml }}", "`from_yaml` got invalid YAML")]);
}

#[test]
fn filter_regex_replace() {
    assert_renders(&[
        (
            "{{ 'hello world' | regex_replace('o', '0') }}",
            "hell0 w0rld",
        ),
        (
            "{{ 'host-01' | regex_replace('^(\\\\w+)-(\\\\d+)$', '\\\\2_\\\\1') }}",
            "01_host",
        ),
        (
            "{{ 'a1b2' | regex_replace('(?P<d>\\\\d)', '<\\\\g<d>>') }}",
            "a<1>b<2>",
        ),
        (
            "{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}",
            "AxC",
        ),
        ("{{ 'ABC' | regex_replace('b', 'x', true) }}", "AxC"),
        ("{{ 'aaa' | regex_replace('a', 'b', count=2) }}", "bba"),
        ("{{ 'cost' | regex_replace('cost', '$5') }}", "$5"),
        ("{{ 'x' | regex_replace('y', 'z') }}", "x"),
    ]);
    assert_fails(&[
        ("{{ 'x' | regex_replace('(', 'y') }}", "invalid regex `(`"),
        (
            "{{ 'aa' | regex_replace('a', 'b', mandatory_count=1) }}",
            "expected 1 matches",
        ),
    ]);
}

#[test]
fn filter_regex_search_and_findall() {
    assert_renders(&[
        ("{{ 'version 1.2.3' | regex_search('[0-9.]+') }}", "1.2.3"),
        ("{{ 'abc' | regex_search('x') }}", "None"),
        ("{{ 'abc' | regex_search('x') is none }}", "True"),
        (
            "{{ 'key=val' | regex_search('(\\\\w+)=(\\\\w+)', '\\\\2', '\\\\1') }}",
            "['val', 'key']",
        ),
        (
            "{{ 'key=val' | regex_search('(?P<k>\\\\w+)=', '\\\\g<k>') }}",
            "['key']",
        ),
        ("{{ 'ABC' | regex_search('b', ignorecase=true) }}", "B"),
        (
            "{{ 'a1b22c333' | regex_findall('\\\\d+') }}",
            "['1', '22', '333']",
        ),
        (
            "{{ 'a=1 b=2' | regex_findall('(\\\\w)=\\\\d') }}",
            "['a', 'b']",
        ),
        (
            "{{ 'a=1 b=2' | regex_findall('(\\\\w)=(\\\\d)') }}",
            "[['a', '1'], ['b', '2']]",
        ),
        ("{{ 'a.b' | regex_escape }}", "a\\.b"),
    ]);
    assert_fails(&[
        ("{{ 'x' | regex_search('[') }}", "invalid regex `[`"),
        (
            "{{ 'x' | regex_findall('(?<=a)b') }}",
            "invalid regex `(?<=a)b`",
        ),
        (
            "{{ 'x' | regex_search('x', 'oops') }}",
            "invalid group reference `oops`",
        ),
    ]);
}

#[test]
fn filter_base64() {
    assert_renders(&[
        ("{{ 'hello' | b64encode }}", "aGVsbG8="),
        ("{{ 'aGVsbG8=' | b64decode }}", "hello"),
        ("{{ 'héllo' | b64encode | b64decode }}", "héllo"),
    ]);
    assert_fails(&[
        ("{{ '***' | b64decode }}", "`b64decode` got invalid base64"),
        ("{{ '/w==' | b64decode }}", "not UTF-8"),
    ]);
}

#[test]
fn filter_ternary() {
    assert_renders(&[
        ("{{ flag | ternary('on', 'off') }}", "on"),
        ("{{ (not flag) | ternary('on', 'off') }}", "off"),
        ("{{ nothing | ternary('on', 'off') }}", "off"),
        ("{{ nothing | ternary('on', 'off', 'unset') }}", "unset"),
        ("{{ empty | ternary(1, 2) }}", "2"),
    ]);
    assert_fails(&[(
        "{{ missing | ternary(1, 2) }}",
        "undefined variable `missing`",
    )]);
}

#[test]
fn filter_combine() {
    let templar = Templar::new();
    let vars = vars();
    let cases = [
        (
            "{'a': 1, 'b': 1} | combine({'b': 2}, {'c': 3})",
            json!({"a": 1, "b": 2, "c": 3}),
        ),
        (
            "{'a': {'x': 1}} | combine({'a': {'y': 2}})",
            json!({"a": {"y": 2}}),
        ),
        (
            "{'a': {'x': 1}} | combine({'a': {'y': 2}}, recursive=true)",
            json!({"a": {"x": 1, "y": 2}}),
        ),
        ("{'l': [1, 2]} | combine({'l': [3]})", json!({"l": [3]})),
        (
            "{'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='append')",
            json!({"l": [1, 2, 2, 3]}),
        ),
        (
            "{'l': [1, 2]} | combine({'l': [3]}, list_merge='prepend')",
            json!({"l": [3, 1, 2]}),
        ),
        (
            "{'l': [1, 2]} | combine({'l': [3]}, list_merge='keep')",
            json!({"l": [1, 2]}),
        ),
        (
            "{'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='append_rp')",
            json!({"l": [1, 2, 3]}),
        ),
        ("[{'a': 1}, {'b': 2}] | combine", json!({"a": 1, "b": 2})),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            templar.eval(expr, &vars).unwrap(),
            expected,
            "expression {expr:?}"
        );
    }
    assert_fails(&[
        ("{{ {} | combine(5) }}", "`combine` takes mappings, got `5`"),
        (
            "{{ {} | combine({}, list_merge='merge') }}",
            "invalid `list_merge` value `merge`",
        ),
    ]);
}

#[test]
fn filter_dict2items_and_items2dict() {
    let templar = Templar::new();
    let vars = vars();
    let cases = [
        (
            "user | dict2items",
            json!([{"key": "name", "value": "deploy"}, {"key": "shell", "value": "/bin/bash"}]),
        ),
        (
            "{'a': 1} | dict2items(key_name='k', value_name='v')",
            json!([{"k": "a", "v": 1}]),
        ),
        (
            "{'a': 1} | dict2items('k', 'v')",
            json!([{"k": "a", "v": 1}]),
        ),
        ("user | dict2items | items2dict", vars["user"].clone()),
        (
            "[{'n': 'a', 'x': 1}] | items2dict(key_name='n', value_name='x')",
            json!({"a": 1}),
        ),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            templar.eval(expr, &vars).unwrap(),
            expected,
            "expression {expr:?}"
        );
    }
    assert_fails(&[
        ("{{ ports | dict2items }}", "`dict2items` takes a mapping"),
        (
            "{{ [{'a': 1}] | items2dict }}",
            "has no `key` or no `value` key",
        ),
    ]);
}

#[test]
fn filter_quote_and_paths() {
    assert_renders(&[
        ("{{ 'simple' | quote }}", "simple"),
        (
            "{{ \"it's here\" | quote }}",
            &crate::modules::common::quote("it's here"),
        ),
        ("{{ 'a b' | quote }}", &crate::modules::common::quote("a b")),
        ("{{ '/etc/nginx/nginx.conf' | basename }}", "nginx.conf"),
        ("{{ '/etc/nginx/' | basename }}", ""),
        ("{{ 'file' | basename }}", "file"),
        ("{{ '/etc/nginx/nginx.conf' | dirname }}", "/etc/nginx"),
        ("{{ '/etc' | dirname }}", "/"),
        ("{{ 'file' | dirname }}", ""),
    ]);
}

#[test]
fn filter_hash() {
    assert_renders(&[
        (
            "{{ 'abc' | hash }}",
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        ),
        (
            "{{ 'abc' | hash('sha1') }}",
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        ),
        (
            "{{ 'abc' | checksum }}",
            "a9993e364706816aba3e25717850c26c9cd0d89d",
        ),
        (
            "{{ 'abc' | hash('sha256') }}",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            "{{ 'abc' | hash('md5') }}",
            "900150983cd24fb0d6963f7d28e17f72",
        ),
    ]);
    assert_fails(&[(
        "{{ 'abc' | hash('crc32') }}",
        "unsupported hash algorithm `crc32`",
    )]);
}

#[test]
fn filter_mandatory() {
    assert_renders(&[("{{ name | mandatory }}", "web")]);
    assert_fails(&[
        ("{{ missing | mandatory }}", "undefined variable `missing`"),
        (
            "{{ missing | mandatory('set `missing` in group_vars') }}",
            "set `missing` in group_vars",
        ),
    ]);
}

#[test]
fn filter_list_operations() {
    assert_renders(&[
        ("{{ [1, 2, 1, 3] | unique | list }}", "[1, 2, 3]"),
        ("{{ [1, [2, [3, [4]]]] | flatten }}", "[1, 2, 3, 4]"),
        (
            "{{ [1, [2, [3, [4]]]] | flatten(levels=1) }}",
            "[1, 2, [3, [4]]]",
        ),
        ("{{ [1, [2, [3]]] | flatten(1) }}", "[1, 2, [3]]"),
        ("{{ [1, none, [2, 'None']] | flatten }}", "[1, 2]"),
        ("{{ [1, none] | flatten(skip_nulls=false) }}", "[1, None]"),
        ("{{ ports | length }}", "2"),
        ("{{ ports | count }}", "2"),
        ("{{ 'abc' | length }}", "3"),
        ("{{ ports | first }}", "80"),
        ("{{ ports | last }}", "443"),
        (
            "{{ users | map(attribute='name') | join(',') }}",
            "alice,bob",
        ),
        ("{{ ports | map('string') | list }}", "['80', '443']"),
        ("{{ [1, 2, 3, 4] | select('even') | list }}", "[2, 4]"),
        ("{{ [1, 2, 3, 4] | reject('even') | list }}", "[1, 3]"),
        (
            "{{ users | selectattr('admin') | map(attribute='name') | list }}",
            "['alice']",
        ),
        (
            "{{ users | rejectattr('admin') | map(attribute='name') | list }}",
            "['bob']",
        ),
        ("{{ ['ab', 'cd'] | select('match', 'c') | list }}", "['cd']"),
    ]);
    assert_fails(&[("{{ 5 | flatten }}", "`flatten` takes a list")]);
}

#[test]
fn filter_version_compare() {
    assert_renders(&[
        ("{{ '3.0.11' | version_compare('3.5', '<') }}", "True"),
        ("{{ '12' | version_compare('12', '>=') }}", "True"),
        ("{{ '1.2' | version_compare('1.2.0') }}", "False"),
    ]);
}

#[test]
fn test_registered_results() {
    assert_renders(&[
        ("{{ changed_result is changed }}", "True"),
        ("{{ ok_result is changed }}", "False"),
        ("{{ loop_result is changed }}", "True"),
        ("{{ changed_result is failed }}", "False"),
        ("{{ failed_result is failed }}", "True"),
        ("{{ failed_result is succeeded }}", "False"),
        ("{{ ok_result is succeeded }}", "True"),
        ("{{ ok_result is success }}", "True"),
        ("{{ skipped_result is skipped }}", "True"),
        ("{{ ok_result is skipped }}", "False"),
        ("{{ ok_result is not changed }}", "True"),
    ]);
    assert_fails(&[
        (
            "{{ 'text' is changed }}",
            "the `changed` test takes a registered task result (a mapping), got a string",
        ),
        ("{{ missing is changed }}", "undefined variable `missing`"),
    ]);
}

#[test]
fn test_regex() {
    assert_renders(&[
        ("{{ 'foobar' is match('foo') }}", "True"),
        ("{{ 'foobar' is match('bar') }}", "False"),
        ("{{ 'foobar' is match('o+b') }}", "False"),
        ("{{ 'foobar' is search('bar') }}", "True"),
        ("{{ 'foobar' is search('baz') }}", "False"),
        ("{{ 'foobar' is regex('o+b') }}", "True"),
        (
            "{{ 'foobar' is regex('bar', match_type='match') }}",
            "False",
        ),
        (
            "{{ 'foobar' is regex('foobar', match_type='fullmatch') }}",
            "True",
        ),
        ("{{ 'FOO' is match('foo', ignorecase=true) }}", "True"),
        ("{{ 'a\\nfoo' is match('^foo', multiline=true) }}", "False"),
        ("{{ 'a\\nfoo' is search('^foo', multiline=true) }}", "True"),
        ("{{ 'b|a' is match('a|b') }}", "True"),
        ("{{ 'xb' is match('a|b') }}", "False"),
    ]);
    assert_fails(&[("{{ 'x' is match('(') }}", "invalid regex `(`")]);
}

#[test]
fn test_version() {
    assert_renders(&[
        ("{{ '3.0.11' is version('3.5', '<') }}", "True"),
        ("{{ '3.0.11' is version('3.5', 'lt') }}", "True"),
        ("{{ '3.5' is version('3.0.11', '>') }}", "True"),
        ("{{ '3.5' is version('3.5', '>=') }}", "True"),
        ("{{ '3.5' is version('3.5') }}", "True"),
        ("{{ '3.5' is version('3.5', '!=') }}", "False"),
        ("{{ '3.5' is version('3.6', '<>') }}", "True"),
        ("{{ '3.5' is version('3.6', 'ne') }}", "True"),
        ("{{ '3.5' is version('3.6', '<=') }}", "True"),
        ("{{ '3.5' is version('3.6', 'le') }}", "True"),
        ("{{ '3.5' is version('3.5', '==') }}", "True"),
        ("{{ '3.5' is version('3.5', '=') }}", "True"),
        ("{{ '3.5' is version('3.4', 'ge') }}", "True"),
        ("{{ '3.5' is version('3.4', 'gt') }}", "True"),
        ("{{ '1.10' is version('1.9', '>') }}", "True"),
        ("{{ version is version('1.22.1-9', '>') }}", "True"),
        ("{{ version is version('1.22.1-10', '<') }}", "True"),
        ("{{ version is version('1.22.1', '>') }}", "True"),
        ("{{ version is version('1:1.0', '<') }}", "True"),
        ("{{ '1.0~rc1' is version('1.0', '<') }}", "True"),
        ("{{ '1.0+b1' is version('1.0', '>') }}", "True"),
        (
            "{{ '2.36-9+deb12u4' is version('2.36-9+deb12u10', '<') }}",
            "True",
        ),
        (
            "{{ '1.2.3' is version('1.2.3', '==', strict=true) }}",
            "True",
        ),
        ("{{ '1.2a1' is version('1.2', '<', strict=true) }}", "False"),
    ]);
    assert_fails(&[
        (
            "{{ '1.2' is version('1.3', 'less') }}",
            "invalid version operator `less`",
        ),
        (
            "{{ '1.2-1' is version('1.3', '<', strict=true) }}",
            "invalid strict version `1.2-1`",
        ),
    ]);
}

#[test]
fn test_types_and_truthiness() {
    assert_renders(&[
        ("{{ nothing is none }}", "True"),
        ("{{ name is none }}", "False"),
        ("{{ name is string }}", "True"),
        ("{{ port is number }}", "True"),
        ("{{ user is mapping }}", "True"),
        ("{{ ports is sequence }}", "True"),
        ("{{ 80 is in ports }}", "True"),
        ("{{ 81 in ports }}", "False"),
        ("{{ name is truthy }}", "True"),
        ("{{ empty is truthy }}", "False"),
        ("{{ 'no' is truthy }}", "True"),
        ("{{ 'no' is truthy(convert_bool=true) }}", "False"),
        ("{{ empty is falsy }}", "True"),
        ("{{ 'yes' is falsy(convert_bool=true) }}", "False"),
        ("{{ ports is contains(443) }}", "True"),
        ("{{ ports is contains(22) }}", "False"),
        ("{{ [80] is subset(ports) }}", "True"),
        ("{{ [22] is subset(ports) }}", "False"),
        ("{{ ports is superset([443]) }}", "True"),
        ("{{ ports is superset([443, 22]) }}", "False"),
    ]);
    assert_fails(&[("{{ 5 is contains(1) }}", "must be a list, got a number")]);
}

#[test]
fn lookup_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pub");
    std::fs::write(&path, "ssh-ed25519 AAAA test\n\n").unwrap();
    let path = path.display().to_string();

    let templar = Templar::new();
    let vars = json!({"key_path": path, "numbers": [1, 2, 3]});
    let home = std::env::var("HOME").unwrap_or_default();
    let cases = [
        ("{{ lookup('env', 'HOME') }}", home.clone()),
        (
            "{{ lookup('env', 'VPSFORGE_SURELY_UNSET_VARIABLE') }}",
            String::new(),
        ),
        (
            "{{ lookup('env', 'VPSFORGE_SURELY_UNSET_VARIABLE', default='d') }}",
            "d".into(),
        ),
        ("{{ query('env', 'HOME') }}", format!("['{home}']")),
        (
            "{{ lookup('env', 'HOME', 'HOME') }}",
            format!("{home},{home}"),
        ),
        (
            "{{ lookup('file', key_path) }}",
            "ssh-ed25519 AAAA test".into(),
        ),
        ("{{ q('file', key_path) | length }}", "1".into()),
        (
            "{{ lookup('vars', 'key_' ~ 'path') == key_path }}",
            "True".into(),
        ),
        ("{{ lookup('vars', 'nope', default=5) }}", "5".into()),
        (
            "{{ query('vars', 'key_path', 'key_path') | length }}",
            "2".into(),
        ),
        ("{{ lookup('vars', 'numbers') | sum }}", "6".into()),
    ];
    for (template, expected) in cases {
        assert_eq!(
            templar.render_str(template, &vars).unwrap(),
            expected,
            "template {template:?}"
        );
    }

    let cases = [
        (
            "{{ lookup('pipe', 'date') }}",
            "lookup plugin `pipe` is not supported",
        ),
        ("{{ lookup('nope', 'x') }}", "unknown lookup plugin `nope`"),
        (
            "{{ lookup('file', '/nonexistent/vpsforge') }}",
            "lookup `file` cannot read `/nonexistent/vpsforge`",
        ),
    ];
    for (template, expected) in cases {
        let err = templar.render_str(template, &vars).unwrap_err();
        assert!(
            err.message.contains(expected),
            "template {template:?}: {}",
            err.message
        );
    }
}

#[test]
fn regex_replacement_conversion() {
    let cases = [
        (r"\1", "${1}"),
        (r"\1\2", "${1}${2}"),
        (r"\10", "${10}"),
        (r"\g<name>", "${name}"),
        (r"\g<2>x", "${2}x"),
        ("$1", "$$1"),
        (r"a\nb", "a\nb"),
        (r"\\", "\\"),
        ("plain", "plain"),
    ];
    for (python, expected) in cases {
        assert_eq!(
            regex_cache::python_replacement(python),
            expected,
            "replacement {python:?}"
        );
    }
}

#[test]
fn debian_version_order() {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let cases = [
        ("1.0", "1.0", Equal),
        ("1.0", "1.00", Equal),
        ("3.0.11", "3.5", Less),
        ("1.22.1-9+deb12u1", "1.22.1-9", Greater),
        ("1.22.1-9+deb12u1", "1.22.1-9+deb12u2", Less),
        ("1.22.1-9+deb12u10", "1.22.1-9+deb12u2", Greater),
        ("1:0.9", "2.0", Greater),
        ("1.0~rc1", "1.0", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~", "1.0", Less),
        ("1.0a", "1.0", Greater),
        ("1.0a", "1.0+", Less),
        ("2.36-9+deb12u4", "2.36-9", Greater),
    ];
    for (left, right, expected) in cases {
        assert_eq!(
            version::compare_debian(left, right),
            expected,
            "{left} vs {right}"
        );
        assert_eq!(
            version::compare_debian(right, left),
            expected.reverse(),
            "{right} vs {left}"
        );
    }
}

#[test]
fn template_cache_reused() {
    let templar = Templar::new();
    for port in [1, 2, 3] {
        let rendered = templar
            .render_str("{{ port }}", &json!({"port": port}))
            .unwrap();
        assert_eq!(rendered, port.to_string());
    }
}

#[test]
fn render_str_never_escapes() {
    assert_renders(&[
        ("{{ name }}/tasks/main.yml", "web/tasks/main.yml"),
        ("{{ name }}.json", "web.json"),
        ("<b>{{ '<i>' }}</b>.html", "<b><i></b>.html"),
        ("{{ '\"q\"' }}.js", "\"q\".js"),
    ]);
}

#[test]
fn variables_with_templates_render_lazily() {
    let templar = Templar::new();
    let vars = json!({
        "app_name": "shop",
        "app_dir": "/srv/{{ app_name }}",
        "config_path": "{{ app_dir }}/config.yml",
        "ports": [80, 443],
        "ports_copy": "{{ ports }}",
        "settings": {"root": "{{ app_dir }}/public", "workers": 4},
        "later": "{{ result.stdout }}",
    });
    let cases = [
        ("{{ config_path }}", "/srv/shop/config.yml"),
        ("{{ settings.root }}", "/srv/shop/public"),
        ("{{ ports_copy | length }}", "2"),
        ("{{ later | default('none yet') }}", "none yet"),
        ("{{ later is defined }}", "False"),
    ];
    for (template, expected) in cases {
        assert_eq!(
            templar.render_str(template, &vars).unwrap(),
            expected,
            "template {template:?}"
        );
    }
    assert_eq!(templar.eval("ports_copy", &vars).unwrap(), json!([80, 443]));
    assert_eq!(
        templar
            .render_value(&json!("{{ settings }}"), &vars)
            .unwrap(),
        json!({"root": "/srv/shop/public", "workers": 4})
    );
}

#[test]
fn variable_render_failure_explained() {
    let templar = Templar::new();
    let vars = json!({
        "later": "{{ result.stdout }}",
        "loop_a": "{{ loop_b }}",
        "loop_b": "{{ loop_a }}",
    });

    let err = templar.render_str("x {{ later }}", &vars).unwrap_err();
    assert_eq!(
        err.message,
        "failed to render variable `later`: undefined variable `result`: define it, or give it a value with `result | default(...)`"
    );
    assert_eq!(err.column, Some(6));

    let err = templar.eval_bool("later == 'x'", &vars).unwrap_err();
    assert!(
        err.message.starts_with("failed to render variable `later`"),
        "{}",
        err.message
    );

    let err = templar.render_str("{{ loop_a }}", &vars).unwrap_err();
    assert!(err.message.contains("refers to itself"), "{}", err.message);
}

#[test]
fn templar_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Templar>();
}

#[test]
fn filter_comment() {
    assert_renders(&[
        (
            "{{ 'Managed by vpsforge' | comment }}",
            "#\n# Managed by vpsforge\n#",
        ),
        ("{{ 'a\\n\\nb' | comment }}", "#\n# a\n#\n# b\n#"),
        ("{{ 'x' | comment('c') }}", "//\n// x\n//"),
        (
            "{{ 'x' | comment(style='cblock') }}",
            "/*\n *\n * x\n *\n */",
        ),
        ("{{ 'x' | comment('xml') }}", "<!--\n -\n - x\n -\n-->"),
        ("{{ 'x' | comment(decoration='; ') }}", ";\n; x\n;"),
    ]);
    assert_fails(&[(
        "{{ 'x' | comment('lisp') }}",
        "invalid comment style `lisp`",
    )]);
}

#[test]
fn filter_extract() {
    let templar = Templar::new();
    let vars = json!({
        "groups": {"web": ["a", "b"]},
        "hostvars": {
            "a": {"ansible_host": "10.0.0.1", "nic": {"mac": "m1"}},
            "b": {"ansible_host": "10.0.0.2", "nic": {"mac": "m2"}},
        },
    });
    let cases = [
        (
            "groups['web'] | map('extract', hostvars, 'ansible_host') | list",
            json!(["10.0.0.1", "10.0.0.2"]),
        ),
        (
            "groups['web'] | map('extract', hostvars, ['nic', 'mac']) | list",
            json!(["m1", "m2"]),
        ),
        ("'a' | extract(hostvars)", vars["hostvars"]["a"].clone()),
        (
            "[0, 1] | map('extract', ['x', 'y']) | list",
            json!(["x", "y"]),
        ),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            templar.eval(expr, &vars).unwrap(),
            expected,
            "expression {expr:?}"
        );
    }
    let err = templar.eval("'c' | extract(hostvars)", &vars).unwrap_err();
    assert!(
        err.message.contains("`extract` found no item `c`"),
        "{}",
        err.message
    );
}

#[test]
fn filter_set_theory() {
    assert_renders(&[
        ("{{ [1, 2, 2] | union([2, 3]) }}", "[1, 2, 3]"),
        ("{{ [1, 2, 3] | intersect([2, 3, 4]) }}", "[2, 3]"),
        ("{{ [1, 2, 3] | difference([2]) }}", "[1, 3]"),
        (
            "{{ [1, 2, 3] | symmetric_difference([3, 4]) }}",
            "[1, 2, 4]",
        ),
    ]);
    assert_fails(&[("{{ 5 | union([1]) }}", "`union` takes lists, got `5`")]);
}

#[test]
fn filter_type_debug() {
    assert_renders(&[
        ("{{ name | type_debug }}", "str"),
        ("{{ port | type_debug }}", "int"),
        ("{{ 1.5 | type_debug }}", "float"),
        ("{{ flag | type_debug }}", "bool"),
        ("{{ nothing | type_debug }}", "NoneType"),
        ("{{ ports | type_debug }}", "list"),
        ("{{ user | type_debug }}", "dict"),
    ]);
}

#[test]
fn python_methods_available() {
    assert_renders(&[
        ("{{ name.startswith('we') }}", "True"),
        ("{{ name.endswith('x') }}", "False"),
        ("{{ 'a,b'.split(',') }}", "['a', 'b']"),
        ("{{ '  x '.strip() }}", "x"),
        ("{{ name.upper() }}", "WEB"),
        ("{{ user.get('name') }}", "deploy"),
        ("{{ user.get('nope', 'fallback') }}", "fallback"),
        (
            "{% for k, v in user.items() %}{{ k }}={{ v }};{% endfor %}",
            "name=deploy;shell=/bin/bash;",
        ),
        ("{{ user.keys() | list }}", "['name', 'shell']"),
    ]);
}

#[test]
fn include_rejected() {
    assert_fails(&[
        (
            "{% include 'other.j2' %}",
            "cannot load template `other.j2`: include, import and extends are not supported",
        ),
        ("{% extends 'base.j2' %}", "cannot load template `base.j2`"),
        (
            "{% import 'macros.j2' as m %}",
            "cannot load template `macros.j2`",
        ),
    ]);
}

#[test]
fn scope_matches_templar() {
    let templar = Templar::new();
    let vars = vars();
    let scope = templar.scope(TemplateVars::new(vars.clone()));

    assert_eq!(
        scope.render_str("{{ name }}:{{ port }}").unwrap(),
        "web:8080"
    );
    assert_eq!(
        scope.render_value(&json!({"p": "{{ ports }}"})).unwrap(),
        json!({"p": [80, 443]})
    );
    assert_eq!(scope.eval("port + 1").unwrap(), json!(8081));
    assert!(scope.eval_bool("changed_result is changed").unwrap());
    assert_eq!(scope.render_file("f.j2", "{{ name }}\n").unwrap(), "web\n");

    let err = scope.render_str("{{ missing }}").unwrap_err();
    assert!(
        err.message.starts_with("undefined variable `missing`"),
        "{}",
        err.message
    );
    let err = scope.render_file("f.j2", "{{ missing }}").unwrap_err();
    assert!(
        err.message
            .starts_with("f.j2: undefined variable `missing`"),
        "{}",
        err.message
    );
}

#[test]
fn template_vars_from_non_object_empty() {
    let templar = Templar::new();
    let scope = templar.scope(TemplateVars::from(json!([1, 2])));
    assert_eq!(scope.render_str("{{ 1 + 1 }}").unwrap(), "2");
    let err = scope.render_str("{{ name }}").unwrap_err();
    assert!(
        err.message.starts_with("undefined variable `name`"),
        "{}",
        err.message
    );
}

#[test]
fn nested_variables_behave_as_values() {
    assert_renders(&[
        ("{{ ports[-1] }}", "443"),
        ("{{ users[0].name }}", "alice"),
        ("{{ ports == [80, 443] }}", "True"),
        (
            "{{ user == {'name': 'deploy', 'shell': '/bin/bash'} }}",
            "True",
        ),
        ("{{ user | length }}", "2"),
        ("{{ ports | sort(reverse=true) | list }}", "[443, 80]"),
        ("{% for k in user %}{{ k }};{% endfor %}", "name;shell;"),
        (
            "{% for p in ports %}{{ loop.index }}:{{ p }};{% endfor %}",
            "1:80;2:443;",
        ),
        ("{{ ports[5] is defined }}", "False"),
        ("{{ user.name is defined }}", "True"),
        ("{{ 'shell' in user }}", "True"),
        ("{{ user | dict2items | length }}", "2"),
        (
            "{{ users | map(attribute='admin') | list }}",
            "[True, False]",
        ),
        ("{{ [] if not ports else ports | last }}", "443"),
    ]);
}

#[test]
fn nested_templates_render_lazily() {
    let templar = Templar::new();
    let vars = json!({
        "app_dir": "/srv/shop",
        "hostvars": {
            "a": {"ip": "10.0.0.1", "url": "http://{{ hostvars.a.ip }}/"},
            "b": {"url": "{{ undefined_thing }}", "self": "{{ hostvars.b.self }}"},
        },
        "paths": ["{{ app_dir }}/a", "{{ app_dir }}/b"],
    });
    assert_eq!(
        templar.render_str("{{ hostvars.a.url }}", &vars).unwrap(),
        "http://10.0.0.1/"
    );
    assert_eq!(
        templar
            .render_str("{{ hostvars['a']['url'] }}", &vars)
            .unwrap(),
        "http://10.0.0.1/"
    );
    assert_eq!(
        templar.eval("paths", &vars).unwrap(),
        json!(["/srv/shop/a", "/srv/shop/b"])
    );
    assert_eq!(
        templar
            .render_str("{{ paths | join(' ') }}", &vars)
            .unwrap(),
        "/srv/shop/a /srv/shop/b"
    );

    let err = templar
        .render_str("{{ hostvars.b.url }}", &vars)
        .unwrap_err();
    assert!(
        err.message.starts_with(
            "failed to render variable `hostvars.b.url`: undefined variable `undefined_thing`"
        ),
        "{}",
        err.message
    );
    let err = templar
        .render_str("{{ hostvars.b.self }}", &vars)
        .unwrap_err();
    assert!(
        err.message.contains("`hostvars.b.self` refers to itself"),
        "{}",
        err.message
    );
}

#[test]
fn filter_password_hash() {
    // Expected hashes come from `openssl passwd -6 -salt SALT PASSWORD` (OpenSSL 3).
    let long_password = "a".repeat(70);
    let templar = Templar::new();
    let vars = json!({"long_password": long_password});
    let cases = [
        (
            "{{ 'Hello world!' | password_hash('sha512', 'saltstring') }}",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
        ),
        (
            "{{ 'Hello world!' | password_hash(salt='saltstringsaltstring', rounds=10000) }}",
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
        ),
        (
            "{{ 'secret' | password_hash('sha512', 'toolongsaltstringXX') }}",
            "$6$toolongsaltstrin$YbDr56I3YnFMzFdiKjmvZJQFadx22PE13HAFEyCcNt7LQj3KY3OctF6ymrQHwjCUk.FcwaWOEAV7s6i0EMV4i0",
        ),
        (
            "{{ long_password | password_hash('sha512', 'x') }}",
            "$6$x$xPhKewFgSVKWqxLGd6.VqJLwTNS6Y1TL9TDH9Ldr5gnwLihuiUW06wVa8IsncuJUiPG7.lhQN.7VHZQHE5fTr.",
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(
            templar.render_str(template, &vars).unwrap(),
            expected,
            "template {template:?}"
        );
    }

    let random = templar
        .render_str("{{ 'pw' | password_hash }}", &vars)
        .unwrap();
    let parts: Vec<&str> = random.split('$').collect();
    assert_eq!(parts.len(), 4, "hash {random:?}");
    assert_eq!(parts[1], "6");
    assert_eq!(parts[2].len(), 16);
    assert_eq!(parts[3].len(), 86);

    assert_fails(&[
        (
            "{{ 'pw' | password_hash('md5') }}",
            "unsupported `password_hash` type `md5`",
        ),
        (
            "{{ 'pw' | password_hash('sha512', 'a$b') }}",
            "invalid `password_hash` salt `a$b`",
        ),
    ]);
}

#[test]
fn qualified_names_accepted() {
    assert_renders(&[
        ("{{ 'no' | ansible.builtin.bool }}", "False"),
        ("{{ ports | ansible.builtin.to_json }}", "[80, 443]"),
        ("{{ 'ab' | ansible.builtin.regex_replace('b', 'c') }}", "ac"),
        ("{{ 'foo' is ansible.builtin.match('f') }}", "True"),
        (
            "{{ '1.2' is ansible.builtin.version('1.10', '<') }}",
            "True",
        ),
        (
            "{{ lookup('ansible.builtin.env', 'VPSFORGE_SURELY_UNSET_VARIABLE') }}",
            "",
        ),
    ]);
}

#[test]
fn filter_random_seeded() {
    let templar = Templar::new();
    let vars = json!({"host": "web1", "other": "web2"});
    let first = templar
        .render_str("{{ 59 | random(seed=host) }}", &vars)
        .unwrap();
    let again = templar
        .render_str("{{ 59 | random(seed=host) }}", &vars)
        .unwrap();
    assert_eq!(first, again);
    let minute: i64 = first.parse().unwrap();
    assert!((0..59).contains(&minute), "minute {minute}");

    for _ in 0..50 {
        let value: i64 = templar
            .render_str("{{ 20 | random(start=10, step=5) }}", &vars)
            .unwrap()
            .parse()
            .unwrap();
        assert!([10, 15].contains(&value), "value {value}");
    }
    let picked = templar
        .render_str("{{ ['a', 'b', 'c'] | random(seed=other) }}", &vars)
        .unwrap();
    assert!(
        ["a", "b", "c"].contains(&picked.as_str()),
        "picked {picked}"
    );

    let shuffled = templar
        .eval("[1, 2, 3, 4, 5] | shuffle(seed=host) | sort", &vars)
        .unwrap();
    assert_eq!(shuffled, json!([1, 2, 3, 4, 5]));
    let once = templar
        .eval("[1, 2, 3, 4, 5] | shuffle(seed=host)", &vars)
        .unwrap();
    let twice = templar
        .eval("[1, 2, 3, 4, 5] | shuffle(seed=host)", &vars)
        .unwrap();
    assert_eq!(once, twice);

    assert_fails(&[
        (
            "{{ 0 | random }}",
            "`random` got an empty range from 0 to 0",
        ),
        (
            "{{ [] | random }}",
            "`random` cannot pick from an empty list",
        ),
        ("{{ 5 | random(step=0) }}", "invalid `random` step `0`"),
    ]);
}

#[test]
fn dict_function_takes_pairs() {
    let templar = Templar::new();
    let vars = vars();
    let cases = [
        ("dict(['a', 'b'] | zip([1, 2]))", json!({"a": 1, "b": 2})),
        ("dict([['a', 1]], b=2)", json!({"a": 1, "b": 2})),
        (
            "dict(user, extra=1)",
            json!({"name": "deploy", "shell": "/bin/bash", "extra": 1}),
        ),
        ("dict(a=1)", json!({"a": 1})),
        ("dict()", json!({})),
    ];
    for (expr, expected) in cases {
        assert_eq!(
            templar.eval(expr, &vars).unwrap(),
            expected,
            "expression {expr:?}"
        );
    }
    let err = templar.eval("dict([[1, 2, 3]])", &vars).unwrap_err();
    assert!(
        err.message.contains("`dict` takes pairs of key and value"),
        "{}",
        err.message
    );
}

#[test]
fn percent_formatting_explained() {
    assert_fails(&[
        ("{{ '%02d' % 5 }}", "Python's `%` string formatting is not supported: write `'%02d' | format(value)` instead"),
        ("{{ '%s:%s' % ('a', 'b') }}", "Python's `%` string formatting is not supported"),
    ]);
    assert_renders(&[("{{ '%02d' | format(5) }}", "05"), ("{{ 7 % 3 }}", "1")]);
}

#[test]
fn guarded_lookup_on_undefined_parent() {
    assert_renders(&[
        ("{{ nope.attr | default('A') }}", "A"),
        ("{{ nope['x'] | default('D') }}", "D"),
        ("{{ user.missing.deeper | default('C') }}", "C"),
        ("{{ nope.a.b | d('E') }}", "E"),
        ("{{ users[5].name | default('F') }}", "F"),
        ("{{ nope.attr is defined }}", "False"),
        ("{{ nope.attr is undefined }}", "True"),
        ("{{ nope.attr is not defined }}", "True"),
        ("{{ user.name | default('G') }}", "deploy"),
        ("{{ users[1].name | default('H') }}", "bob"),
        ("{{ users[-1]['name'] | default('I') }}", "bob"),
        ("{% if nope.x is defined %}yes{% else %}no{% endif %}", "no"),
        ("{{ nope.x | default(user.missing.y | default('J')) }}", "J"),
        ("{{ nothing.attr | default('K') }}", "K"),
    ]);
}

#[test]
fn unguarded_lookup_on_undefined_parent_fails() {
    assert_fails(&[
        ("{{ nope }}", "undefined variable `nope`"),
        ("{{ nope.attr }}", "undefined variable `nope`"),
        ("{{ nope.attr | upper }}", "undefined variable `nope`"),
        (
            "{{ nope.attr | default('x') }} {{ other }}",
            "undefined variable `other`",
        ),
        (
            "{% for item in nope %}{{ item }}{% endfor %}",
            "undefined variable `nope`",
        ),
    ]);
}

#[test]
fn guarded_lookup_in_conditions() {
    let templar = Templar::new();
    let vars = vars();
    let cases = [
        ("foo.bar is defined", false),
        ("foo.bar is undefined", true),
        ("user.name is defined", true),
        ("foo.bar is defined and foo.bar", false),
        ("(foo.bar | default('yes')) == 'yes'", true),
    ];
    for (expr, expected) in cases {
        let scope = templar.scope(TemplateVars::from_json(&vars));
        assert_eq!(
            scope.eval_condition(expr),
            Ok(expected),
            "condition {expr:?}"
        );
    }
    let err = templar.eval("foo.bar", &vars).unwrap_err();
    assert!(
        err.message.contains("undefined variable `foo"),
        "{}",
        err.message
    );
}

#[test]
fn error_position_after_rewritten_lookup() {
    let templar = Templar::new();
    let template = "{{ nope.a | default('x') }} {{ missing }}";
    let err = templar.render_str(template, &vars()).unwrap_err();
    assert_eq!(err.column, Some(32), "{err:?}");
    assert!(err.message.contains("`missing`"), "{}", err.message);
}

#[test]
fn unsafe_strings_stay_literal() {
    let templar = Templar::new();
    let marked = |text: &str| format!("{}{text}", crate::yaml::UNSAFE_PREFIX);
    let raw = marked("{{ not_a_template }}");

    assert_eq!(
        templar.render_str(&raw, &vars()),
        Ok("{{ not_a_template }}".to_string())
    );
    let scope = templar.scope(TemplateVars::from_json(&vars()));
    assert_eq!(
        scope.render_str(&raw),
        Ok("{{ not_a_template }}".to_string())
    );

    let args = json!({"raw": raw, "plain": marked("no braces"), "name": "{{ name }}", "list": [marked("{% x %}")]});
    let rendered = templar.render_value(&args, &vars()).unwrap();
    assert_eq!(
        rendered,
        json!({"raw": "{{ not_a_template }}", "plain": "no braces", "name": "web", "list": ["{% x %}"]})
    );

    let mut with_unsafe = vars();
    with_unsafe["secret"] = json!(marked("p{{a}}ss"));
    with_unsafe["nested"] = json!({"inner": marked("{{ x }}")});
    let cases = [
        ("{{ secret }}", "p{{a}}ss"),
        ("{{ secret | length }}", "8"),
        ("{{ nested.inner }}", "{{ x }}"),
    ];
    for (template, expected) in cases {
        assert_eq!(
            templar.render_str(template, &with_unsafe).as_deref(),
            Ok(expected),
            "template {template:?}"
        );
    }
}

#[test]
fn lookup_file_search_order() {
    let dir = tempfile::tempdir().unwrap();
    let role = dir.path().join("roles/web");
    let playbook = dir.path().join("site");
    for folder in [role.join("files"), playbook.join("files")] {
        std::fs::create_dir_all(folder).unwrap();
    }
    std::fs::write(role.join("files/both.txt"), "role files\n").unwrap();
    std::fs::write(role.join("role_only.txt"), "role folder\n").unwrap();
    std::fs::write(playbook.join("files/both.txt"), "playbook files\n").unwrap();
    std::fs::write(playbook.join("files/play.txt"), "playbook files\n").unwrap();
    std::fs::write(playbook.join("top.txt"), "playbook folder\n").unwrap();
    let absolute = dir.path().join("absolute.txt");
    std::fs::write(&absolute, "absolute\n").unwrap();

    let templar = Templar::new();
    let in_role = json!({
        "role_path": role.display().to_string(),
        "playbook_dir": playbook.display().to_string(),
        "absolute": absolute.display().to_string(),
    });
    let in_play = json!({"playbook_dir": playbook.display().to_string()});
    let cases = [
        (&in_role, "{{ lookup('file', 'both.txt') }}", "role files"),
        (
            &in_role,
            "{{ lookup('file', 'role_only.txt') }}",
            "role folder",
        ),
        (
            &in_role,
            "{{ lookup('file', 'play.txt') }}",
            "playbook files",
        ),
        (
            &in_role,
            "{{ lookup('file', 'top.txt') }}",
            "playbook folder",
        ),
        (&in_role, "{{ lookup('file', absolute) }}", "absolute"),
        (
            &in_play,
            "{{ lookup('file', 'both.txt') }}",
            "playbook files",
        ),
        (
            &in_play,
            "{{ lookup('file', 'missing.txt', errors='ignore') is none }}",
            "True",
        ),
        (
            &in_play,
            "{{ lookup('file', 'missing.txt', errors='warn') is none }}",
            "True",
        ),
        (
            &in_play,
            "{{ query('file', 'missing.txt', errors='ignore') }}",
            "[]",
        ),
    ];
    for (vars, template, expected) in cases {
        assert_eq!(
            templar.render_str(template, vars).as_deref(),
            Ok(expected),
            "template {template:?}"
        );
    }

    let cases = [
        (
            "{{ lookup('file', 'missing.txt') }}",
            "lookup `file` cannot read `missing.txt`",
        ),
        ("{{ lookup('file', 'missing.txt') }}", "/site/files`"),
        (
            "{{ lookup('file', 'x', errors='loud') }}",
            "invalid value `loud` for the `errors` argument",
        ),
        (
            "{{ lookup('sequence', 'x', errors='ignore') }}",
            "unknown lookup plugin `sequence`",
        ),
    ];
    for (template, expected) in cases {
        let err = templar.render_str(template, &in_play).unwrap_err();
        assert!(
            err.message.contains(expected),
            "template {template:?}: {}",
            err.message
        );
    }
}

#[test]
fn hostvars_reads_other_hosts() {
    let mut hostvars = serde_json::Map::new();
    for index in 0..500 {
        let name = format!("web{index}");
        hostvars.insert(
            name.clone(),
            json!({
                "inventory_hostname": name,
                "ansible_host": "{{ inventory_hostname }}.example.net",
                "ports": [80, 443],
                "site": {"root": "/srv/{{ inventory_hostname }}", "plain": index},
            }),
        );
    }
    // A value that fails to render shows that other hosts' values are converted
    // only when a template reaches them.
    hostvars.insert(
        "broken".to_string(),
        json!({"ansible_host": "{{ no_such_variable }}"}),
    );
    let vars = json!({
        "inventory_hostname": "web0",
        "hostvars": hostvars,
        "peer": "web7",
    });
    let templar = Templar::new();
    let cases = [
        ("{{ hostvars['web42'].ansible_host }}", "web42.example.net"),
        ("{{ hostvars[peer].site.root }}", "/srv/web7"),
        ("{{ hostvars.web3.site.plain }}", "3"),
        ("{{ hostvars['web9'].ports | join(',') }}", "80,443"),
        ("{{ hostvars | length }}", "501"),
        (
            "{{ hostvars[inventory_hostname].ansible_host }}",
            "web0.example.net",
        ),
        (
            "{{ hostvars['nope'].ansible_host | default('none') }}",
            "none",
        ),
        ("{{ 'web499' in hostvars }}", "True"),
    ];
    let scope = templar.scope(TemplateVars::new(vars));
    for (template, expected) in cases {
        assert_eq!(
            scope.render_str(template).as_deref(),
            Ok(expected),
            "template {template:?}"
        );
    }
    let err = scope
        .render_str("{{ hostvars.broken.ansible_host }}")
        .unwrap_err();
    assert_eq!(
        err.message,
        "failed to render variable `hostvars.broken.ansible_host`: undefined variable `no_such_variable`: define it, or give it a value with `no_such_variable | default(...)`"
    );
    let err = scope
        .render_str("{{ hostvars['web1'].missing }}")
        .unwrap_err();
    assert!(
        err.message
            .starts_with("undefined variable `hostvars['web1'].missing`"),
        "{}",
        err.message
    );
}

#[test]
fn shared_vars_read_in_place() {
    let shared = json!({
        "hostvars": {
            "web1": {
                "inventory_hostname": "web1",
                "ansible_port": 2201,
                "url": "http://{{ inventory_hostname }}:{{ ansible_port }}/",
                "first_peer": "{{ groups['web'][0] }}",
                "peer_port": "{{ hostvars['web2'].ansible_port }}",
            },
            "web2": {"inventory_hostname": "web2", "ansible_port": 2202},
        },
        "groups": {"all": ["web1", "web2"], "web": ["web2", "web1"]},
    });
    let Value::Object(shared) = shared else {
        unreachable!("a JSON object literal")
    };
    let templar = Templar::new().with_shared_vars(shared);
    let own = json!({
        "inventory_hostname": "web2",
        "groups": {"all": ["shadowed"]},
        "port": "{{ hostvars[inventory_hostname].ansible_port }}",
    });
    let scope = templar.scope(TemplateVars::new(own));
    let cases = [
        ("{{ hostvars[inventory_hostname].ansible_port }}", "2202"),
        ("{{ hostvars.web1.url }}", "http://web1:2201/"),
        ("{{ hostvars['web1'].first_peer }}", "web2"),
        ("{{ hostvars['web1'].peer_port }}", "2202"),
        ("{{ port }}", "2202"),
        ("{{ groups['all'] | join(',') }}", "web1,web2"),
        ("{{ hostvars | length }}", "2"),
        ("{{ 'web1' in hostvars }}", "True"),
        ("{{ lookup('vars', 'groups')['web'] | first }}", "web2"),
        (
            "{{ groups['web'] | map('extract', hostvars, 'ansible_port') | join(',') }}",
            "2202,2201",
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(
            scope.render_str(template).as_deref(),
            Ok(expected),
            "template {template:?}"
        );
    }
    assert_eq!(
        scope.eval("hostvars.web2").unwrap(),
        json!({"inventory_hostname": "web2", "ansible_port": 2202})
    );
    let err = scope
        .render_str("{{ hostvars.web9.ansible_port }}")
        .unwrap_err();
    assert!(
        err.message.starts_with("undefined variable `hostvars.web9"),
        "{}",
        err.message
    );
}

#[test]
fn registered_names_match_environment() {
    let templar = Templar::new();
    let names = templar.registered_names();
    for filter in [
        "to_json",
        "ansible.builtin.to_json",
        "default",
        "regex_replace",
        "upper",
    ] {
        assert!(names.filters.contains(filter), "filter {filter}");
    }
    for test in ["changed", "version", "defined", "ansible.builtin.failed"] {
        assert!(names.tests.contains(test), "test {test}");
    }
    for function in ["lookup", "query", "q", "range", "dict", "omit"] {
        assert!(names.functions.contains(function), "function {function}");
    }
    assert_eq!(
        names.lookups.iter().map(String::as_str).collect::<Vec<_>>(),
        ["env", "file", "vars"]
    );
    // Every listed filter and test renders without an "unknown" error.
    let vars = json!({});
    for filter in &names.filters {
        let err = templar
            .render_str(&format!("{{{{ none | {filter} }}}}"), &vars)
            .err();
        let message = err.map(|err| err.message).unwrap_or_default();
        assert!(
            !message.starts_with("unknown filter"),
            "{filter}: {message}"
        );
    }
}

#[test]
fn unknown_names_found() {
    let templar = Templar::new();
    let unknown = |kind, name: &str, suggestion: Option<&str>| UnknownName {
        kind,
        name: name.to_string(),
        suggestion: suggestion.map(str::to_string),
    };
    let cases: Vec<(&str, Vec<UnknownName>)> = vec![
        (
            "{{ x | to_jsn }}",
            vec![unknown(NameKind::Filter, "to_jsn", Some("to_json"))],
        ),
        ("{{ x | to_json | upper }}", vec![]),
        (
            "{% if x is chnged %}a{% endif %}",
            vec![unknown(NameKind::Test, "chnged", Some("changed"))],
        ),
        (
            "{{ lookup('sequence', 'start=1') }}",
            vec![unknown(NameKind::Lookup, "sequence", None)],
        ),
        ("{{ query('ansible.builtin.file', 'x') }}", vec![]),
        (
            "{{ lookup('fiel', 'x') }}",
            vec![unknown(NameKind::Lookup, "fiel", Some("file"))],
        ),
        (
            "{{ rnage(3) }}",
            vec![unknown(NameKind::Function, "rnage", Some("range"))],
        ),
        (
            "{% macro m() %}{{ caller() }}{% endmacro %}{{ m() }}",
            vec![],
        ),
        (
            "{% set f = 1 %}{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}",
            vec![],
        ),
        (
            "{{ x | default('a') | ansible.builtin.regex_replace('a', 'b') }}",
            vec![],
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(
            templar.unknown_names(template),
            Ok(expected),
            "template {template:?}"
        );
    }

    assert_eq!(
        templar.unknown_names_in_expression("x is succeded and y | bool"),
        Ok(vec![unknown(NameKind::Test, "succeded", Some("succeeded"))])
    );
    assert_eq!(
        templar.unknown_names_in_expression("{{ x | int }}"),
        Ok(vec![])
    );
    let err = templar.unknown_names("line\n{{ x | }}").unwrap_err();
    assert_eq!(err.line, Some(2), "{err:?}");
    assert_eq!(
        unknown(NameKind::Filter, "to_jsn", None).message(),
        "unknown filter `to_jsn`: check its spelling; vpsforge implements only part of Ansible's filters"
    );
}
