"""service/worker.py's HandOverServer, in process: what the kernel queued for a closing worker is served."""

from __future__ import annotations

import errno
import socket

import gevent

from service.worker import HandOverServer


def serving(served: list) -> HandOverServer:
    """A started server whose handler records each connection, answers one byte and closes it."""

    def handle(sock, address):
        served.append(address)
        sock.sendall(b"!")
        sock.close()

    server = HandOverServer(("127.0.0.1", 0), handle)
    server.start()
    return server


def test_connections_queued_when_the_server_closes_are_served_not_reset():
    served: list = []
    server = serving(served)
    # connected by the kernel, waiting in the listen queue: the hub has not run, so nothing was accepted yet
    clients = [socket.create_connection(server.address, timeout=5) for _ in range(3)]
    server.close()
    gevent.sleep(0.05)  # the handlers spawned by the close run
    assert len(served) == 3
    assert [c.recv(1) for c in clients] == [b"!"] * 3
    for c in clients:
        c.close()


def test_an_accept_that_fails_while_closing_ends_the_hand_over_quietly():
    served: list = []
    server = serving(served)
    client = socket.create_connection(server.address, timeout=5)

    def out_of_descriptors():
        raise OSError(errno.EMFILE, "Too many open files")

    server.do_read = out_of_descriptors
    server.close()  # raises nothing: the worker goes on to finish the requests it holds
    assert server.closed and served == []
    client.close()
