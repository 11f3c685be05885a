"""The wire protocols of the network stack, as pure state machines (sans-IO).

``edf`` turns values into bytes and back, ``enp`` frames messages between two connected
nodes (with lz4 compression), ``handshake`` authenticates a new connection over the shared
cookie, and ``registrar`` encodes the registrar's register/resolve messages.  None of them
opens a socket, reads a clock or imports a backend: a transport hands them the bytes it
received and writes the bytes they return, so the same code runs in simulation, on asyncio
and under a fuzzer.  ``docs/wire.md`` describes every frame byte by byte.
"""
