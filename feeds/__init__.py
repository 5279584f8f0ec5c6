"""The feed service: fires triggers for the built-in feeds (alarms, CouchDB changes), durable in the store.

It depends only on `whisk`; the feed actions in `controller.feeds` write the registrations it runs.
"""

from feeds.service import FeedService

__all__ = ["FeedService"]
