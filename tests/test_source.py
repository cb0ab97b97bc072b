"""Reading captures: every corpus file, every kind of damage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from privaudit.errors import InputError
from privaudit.source import ReadState, expand_inputs, read_exchanges, sniff_format

CORPUS = Path(__file__).parent / "data" / "mitmproxy-testdata"

# Flow counts as mitmproxy's own reader sees them (the corpus README).
CORPUS_COUNTS = [
    ("dumpfile-7.mitm", 2),
    ("dumpfile-7-websocket.mitm", 6),
    ("dumpfile-10.mitm", 1),
    ("dumpfile-19.mitm", 1),
    ("flows/diff_data.mitm", 7),
    ("flows/diff_data.har", 5),
    ("flows/error_log.mitm", 2),
    ("flows/error_log.har", 2),
    ("flows/event_stream.mitm", 2),
    ("flows/event_stream.har", 2),
    ("flows/incomplete_log.mitm", 4),
    ("flows/incomplete_log.har", 4),
    ("flows/successful_log.mitm", 2),
    ("flows/successful_log.har", 2),
    ("flows/websocket.mitm", 3),
    ("flows/websocket.har", 3),
    ("flows/corrupted_gzip_body.mitm", 1),
    ("flows/corrupted_gzip_body.har", 1),
    ("har_files/charles.har", 1),
    ("har_files/chrome.har", 3),
    ("har_files/firefox.har", 14),
    ("har_files/safari.har", 19),
    ("har_files/insomnia.har", 1),
    ("har_files/postdata.har", 1),
    ("har_files/head-content-length.har", 1),
    ("har_files/with-bom.har", 1),
]


@pytest.mark.parametrize("name,count", CORPUS_COUNTS)
def test_corpus_file_reads_with_the_stated_flow_count(name, count):
    state = ReadState()
    exchanges = list(read_exchanges([CORPUS / name], state))
    assert len(exchanges) == count
    assert [e.index for e in exchanges] == list(range(count))
    assert state.inputs[0].flows == count
    assert state.inputs[0].format == ("har" if name.endswith(".har") else "mitm")
    assert state.warnings == []


def test_broken_har_is_an_input_error_naming_file_and_line():
    path = CORPUS / "corrupted_har" / "brokenfile.har"
    with pytest.raises(InputError) as e:
        list(read_exchanges([path]))
    assert str(path) in str(e.value)
    assert ":5:" in str(e.value)  # line of the damage


def test_non_http_flows_are_counted_not_dropped():
    kinds = [e.kind for e in read_exchanges([CORPUS / "flows/diff_data.mitm"])]
    assert kinds.count("tcp") == 2 and kinds.count("http") == 5


def test_flows_are_numbered_across_inputs_in_the_order_given():
    ex = list(read_exchanges([CORPUS / "dumpfile-7.mitm", CORPUS / "har_files/chrome.har"]))
    assert [e.index for e in ex] == [0, 1, 2, 3, 4]
    assert ex[0].source.endswith("dumpfile-7.mitm") and ex[4].source.endswith("chrome.har")


def test_server_address_comes_from_the_capture():
    mitm = list(read_exchanges([CORPUS / "flows/successful_log.mitm"]))
    har = list(read_exchanges([CORPUS / "flows/successful_log.har"]))
    assert mitm[0].server_ip == "93.184.216.34"
    assert [e.server_ip for e in har] == [e.server_ip for e in mitm]


def test_old_dump_host_name_peer_is_not_taken_for_an_address():
    (ex,) = read_exchanges([CORPUS / "dumpfile-10.mitm"])
    assert ex.server_ip is None


def test_websocket_messages_are_kept_from_mitm_and_har():
    mitm = [e for e in read_exchanges([CORPUS / "flows/websocket.mitm"]) if e.websocket]
    har = [e for e in read_exchanges([CORPUS / "flows/websocket.har"]) if e.websocket]
    assert mitm and har
    assert sum(len(e.websocket) for e in mitm) == sum(len(e.websocket) for e in har) == 5
    assert har[0].scheme in ("ws", "wss")
    assert any(not m.from_client for m in har[0].websocket)


def test_old_websocket_dump_with_text_content_is_read():
    ex = list(read_exchanges([CORPUS / "dumpfile-7-websocket.mitm"]))
    ws = [m for e in ex for m in e.websocket]
    assert ws and all(isinstance(m.content, bytes) for m in ws)


def test_tls_facts_and_certificate_are_kept():
    ex = list(read_exchanges([CORPUS / "flows/diff_data.mitm"]))
    https = [e for e in ex if e.kind == "http"][0]
    assert https.tls and https.tls_version == "TLSv1.3"
    assert https.cert is not None and https.cert.subject_cn
    assert https.cert.sha256 and len(https.cert.sha256) == 64


def test_corrupted_gzip_body_keeps_raw_bytes_and_says_why():
    (ex,) = read_exchanges([CORPUS / "flows/corrupted_gzip_body.mitm"])
    msgs = [m for m in (ex.request, ex.response) if m is not None and m.body_decode_error]
    assert msgs and msgs[0].body  # raw bytes kept for byte-level search


def test_har_post_params_without_text_become_a_form_body(tmp_path):
    har = {
        "log": {
            "version": "1.2",
            "entries": [
                {
                    "startedDateTime": "2025-02-01T10:00:00.000Z",
                    "request": {
                        "method": "POST",
                        "url": "https://api.example.org/login",
                        "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "Content-Type", "value": "application/x-www-form-urlencoded"}],
                        "postData": {
                            "mimeType": "application/x-www-form-urlencoded",
                            "params": [{"name": "email", "value": "a b@example.org"}],
                        },
                    },
                    "response": {"status": 200, "httpVersion": "HTTP/1.1", "headers": [], "content": {}},
                    "serverIPAddress": "[2001:db8::1]",
                }
            ],
        }
    }
    p = tmp_path / "f.har"
    p.write_text(json.dumps(har))
    (ex,) = read_exchanges([p])
    assert ex.request.body == b"email=a+b%40example.org"
    assert ex.server_ip == "2001:db8::1"
    assert ex.timestamp_start is not None


def test_truncated_flow_file_yields_flows_before_the_damage(tmp_path):
    data = (CORPUS / "dumpfile-7.mitm").read_bytes()
    p = tmp_path / "cut.mitm"
    # dumpfile-7 holds two flows; keep the first whole and half of the second
    first_len = int(data.split(b":", 1)[0]) + len(data.split(b":", 1)[0]) + 2
    p.write_bytes(data[: first_len + (len(data) - first_len) // 2])
    state = ReadState()
    ex = list(read_exchanges([p], state))
    assert len(ex) == 1
    assert len(state.warnings) == 1 and "read 1 flows" in state.warnings[0] and str(p) in state.warnings[0]


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n0000", "unknown file type"),
        (b"hello world", "unknown file type"),
        (b"12:garbage here", "not a readable mitmproxy flow file"),
        (b'{"not": "a har"}', "no log.entries"),
    ],
)
def test_bad_files_are_input_errors_naming_the_file(tmp_path, content, message):
    p = tmp_path / "bad.mitm"
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        list(read_exchanges([p]))
    assert str(p) in str(e.value) and message in str(e.value)


def test_missing_input_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([tmp_path / "nope.har"])


def test_folder_reads_capture_files_in_name_order_and_skips_the_rest(tmp_path):
    (tmp_path / "b.har").write_bytes((CORPUS / "har_files/chrome.har").read_bytes())
    (tmp_path / "a.mitm").write_bytes((CORPUS / "dumpfile-7.mitm").read_bytes())
    (tmp_path / "findings.json").write_text("{}")
    (tmp_path / "report.html").write_text("<html>")
    (tmp_path / "meta.json").write_text("{}")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.mitm", "b.har"]
    assert len(list(read_exchanges([tmp_path]))) == 5


def test_empty_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no capture files"):
        expand_inputs([tmp_path])


@pytest.mark.parametrize("name", ["har_files/with-bom.har", "dumpfile-19.mitm"])
def test_sniffing_ignores_the_file_name(tmp_path, name):
    p = tmp_path / "capture.bin"
    p.write_bytes((CORPUS / name).read_bytes())
    assert sniff_format(p) == ("har" if name.endswith(".har") else "mitm")


def test_folder_skips_empty_capture_files_but_not_when_all_are_empty(tmp_path):
    (tmp_path / "flows.mitm").write_bytes((CORPUS / "dumpfile-7.mitm").read_bytes())
    (tmp_path / "flows.open.mitm").write_bytes(b"")
    assert len(list(read_exchanges([tmp_path]))) == 2
    (tmp_path / "flows.mitm").write_bytes(b"")
    with pytest.raises(InputError, match="all empty"):
        list(read_exchanges([tmp_path]))
