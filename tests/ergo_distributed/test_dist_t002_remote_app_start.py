"""Ergo's t002_remote_app_start_test.go (TestT2RemoteAppStart), translated: node2 loads an
application with one member and enables its remote start; node1 starts it there through
its ``RemoteNode``; a start of a name node2 did not load fails.

Differences pinned here (the project's, documented in docs/network.md and
docs/applications.md):
- ``RemoteNode.application_start`` returns a Future (``node.wait_for`` it, or ``await``
  it in a handler) instead of blocking.
- A name the peer did not enable is ``NotAllowed`` (Ergo: ``ErrNameUnknown`` for the
  unknown application, which was not enabled either); a name enabled but not loaded there
  is ``ApplicationUnknown``, the error the peer's own start raised.
"""

from __future__ import annotations

import pytest
from dist_probe import remote

from ergo import (
    Actor,
    Application,
    ApplicationMemberSpec,
    ApplicationSpec,
    ApplicationStatus,
    ApplicationUnknown,
    NotAllowed,
)


class AppMember(Actor):
    pass


class RemApp(Application):
    def load(self, node, *args):
        return ApplicationSpec("test rem app", group=[ApplicationMemberSpec(AppMember, name="test app member")])


def test_remote_application_start(nodes):
    node1, node2 = nodes
    remote_node2 = remote(node1, node2.name)
    appname = node2.application_load(RemApp())
    assert appname == "test rem app"
    node2.network().enable_application_start(appname)
    node1.wait_for(remote_node2.application_start(appname))
    assert node2.application_info(appname).state is ApplicationStatus.RUNNING
    assert node2.process_info(node2.whereis("test app member")).application == appname

    with pytest.raises(NotAllowed):  # (Ergo: ErrNameUnknown)
        node1.wait_for(remote_node2.application_start("unknown"))
    node2.network().enable_application_start("unknown")
    with pytest.raises(ApplicationUnknown):  # enabled, but nothing of that name is loaded there
        node1.wait_for(remote_node2.application_start("unknown"))
