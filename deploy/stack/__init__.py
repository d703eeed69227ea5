"""Kafka (KRaft) and Elasticsearch on 127.0.0.1, installed from Maven Central, no Docker.

    from deploy.stack import Stack
    stack = Stack(StackSettings())
    stack.up()        # fetch artifacts once, start both, wait for health; reuses a running stack
    stack.status()    # one ServiceStatus per service
    stack.down()      # stop both, leave no process behind

Errors are ``StackError`` with a ``hint`` that says what to do.
"""

from deploy.stack.errors import StackError
from deploy.stack.manager import ServiceStatus, Stack

__all__ = ["ServiceStatus", "Stack", "StackError"]
