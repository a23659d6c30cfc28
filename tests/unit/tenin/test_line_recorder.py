"""The recording LINE server over the wire (tenin/line_recorder.py on tenin/local_http.py):
what a sender sees on a connection, and what the recorder keeps."""

from __future__ import annotations

import json
import socket
import time

import requests

from tenin.line_recorder import PUSH, REPLY, LineRecorder


def _connect(line: LineRecorder) -> socket.socket:
    host, port = line.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


def _raw_request(path: str, body: bytes, *, token: str = "t", extra: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def _read_answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """`count` answers read off one connection: (status, body) each, in order."""
    data, answers = b"", list[tuple[int, bytes]]()
    sock.settimeout(5)
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode()
            length = int(
                next(
                    (
                        line.split(":")[1]
                        for line in head.split("\r\n")
                        if line.lower().startswith("content-length")
                    ),
                    "0",
                )
            )
            if len(data) >= head_end + 4 + length:
                status = int(head.split()[1])
                data, body = (
                    data[head_end + 4 + length :],
                    data[head_end + 4 : head_end + 4 + length],
                )
                if status != 100:
                    answers.append((status, body))
                continue
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    return answers


def test_a_push_is_delivered_once_per_retry_key_over_keep_alive_connections() -> None:
    with LineRecorder(token="t") as line, requests.Session() as http:
        url, headers = line.base_url + PUSH, {"Authorization": "Bearer t", "X-Line-Retry-Key": "k1"}
        body = {"to": "U1", "messages": [{"type": "text", "text": "こんにちは"}]}
        first = http.post(url, json=body, headers=headers, timeout=5)
        again = http.post(url, json=body, headers=headers, timeout=5)
        assert first.status_code == 200 and first.headers["x-line-request-id"]
        assert again.status_code == 409
        assert again.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
        assert [d.texts() for d in line.delivered_to("U1")] == [["こんにちは"]]
        assert [c.status for c in line.calls(PUSH)] == [200, 409]
        assert line.calls(PUSH)[0].retry_key == "k1"


def test_a_wrong_token_an_unknown_path_and_a_get_are_refused() -> None:
    with LineRecorder(token="t") as line:
        assert (
            requests.post(
                line.base_url + PUSH, json={}, headers={"Authorization": "Bearer x"}, timeout=5
            ).status_code
            == 401
        )
        assert requests.post(line.base_url + "/v2/elsewhere", json={}, timeout=5).status_code == 404
        assert requests.get(line.base_url + PUSH, timeout=5).status_code == 405
        assert line.delivered == []


def test_answers_on_one_connection_come_back_in_request_order() -> None:
    """Three requests written at once (pipelined): three answers, in the same order."""
    with (
        LineRecorder(token="t") as line,
        _connect(line) as sock,
    ):
        pushes = [json.dumps({"to": f"U{n}", "messages": []}).encode() for n in range(3)]
        reply = json.dumps({"replyToken": "", "messages": []}).encode()
        sock.sendall(
            _raw_request(PUSH, pushes[0])
            + _raw_request(REPLY, reply)
            + _raw_request(PUSH, pushes[1])
        )
        assert [status for status, _ in _read_answers(sock, 3)] == [200, 400, 200]
        assert [d.to for d in line.delivered] == ["U0", "U1"]


def test_a_body_cut_off_by_a_sender_that_died_is_recorded_400_and_not_delivered() -> None:
    with LineRecorder(token="t") as line:
        body = json.dumps({"to": "U9", "messages": [{"type": "text", "text": "hi"}]}).encode()
        with _connect(line) as sock:
            sock.sendall(_raw_request(PUSH, body)[:-10])
        deadline = time.monotonic() + 5
        while not line.calls(PUSH) and time.monotonic() < deadline:
            time.sleep(0.01)
        [call] = line.calls(PUSH)
        assert call.status == 400 and "_raw" in call.body
        assert line.delivered == []


def test_a_body_that_is_not_json_gets_400() -> None:
    with LineRecorder(token="t") as line:
        answer = requests.post(
            line.base_url + PUSH,
            data=b"{not json",
            headers={"Authorization": "Bearer t"},
            timeout=5,
        )
        assert answer.status_code == 400 and line.delivered == []


def test_a_sender_that_expects_100_continue_gets_it_then_the_answer() -> None:
    with (
        LineRecorder(token="t") as line,
        _connect(line) as sock,
    ):
        body = json.dumps({"to": "U2", "messages": []}).encode()
        head = _raw_request(PUSH, b"", extra="Expect: 100-continue\r\n").replace(
            b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
        )
        sock.sendall(head)
        sock.settimeout(5)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert [status for status, _ in _read_answers(sock, 1)] == [200]


def test_garbage_on_the_wire_gets_400_and_the_connection_closed() -> None:
    with (
        LineRecorder(token="t") as line,
        _connect(line) as sock,
    ):
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        sock.settimeout(5)
        answer = sock.recv(1000)
        assert answer.startswith(b"HTTP/1.1 400") and b"Connection: close" in answer
        assert sock.recv(1000) == b""


def test_with_latency_requests_on_many_connections_wait_at_once() -> None:
    with LineRecorder(token="t", latency_s=0.2) as line:
        sockets = [_connect(line) for _ in range(5)]
        started = time.monotonic()
        for n, sock in enumerate(sockets):
            sock.sendall(_raw_request(PUSH, json.dumps({"to": f"U{n}", "messages": []}).encode()))
        statuses = [_read_answers(sock, 1)[0][0] for sock in sockets]
        elapsed = time.monotonic() - started
        for sock in sockets:
            sock.close()
        assert statuses == [200] * 5
        assert line.most_in_flight == 5
        assert 0.2 <= elapsed < 1.0  # answered together after the latency, not one by one


def test_pushes_over_the_rate_get_429_with_retry_after() -> None:
    with LineRecorder(token="t", push_rate_per_s=2) as line, requests.Session() as http:
        answers = [
            http.post(
                line.base_url + PUSH,
                json={"to": f"U{n}", "messages": []},
                headers={"Authorization": "Bearer t"},
                timeout=5,
            )
            for n in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert int(answers[2].headers["Retry-After"]) >= 1
        assert line.rate_limited == 1 and len(line.delivered) == 2
