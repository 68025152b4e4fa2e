"""The OdooTenant operator: a small controller runtime on the official ``kubernetes`` client.

``informer`` lists and watches one resource into a cache (bookmarks, re-list on 410 Gone, a
client-side inactivity timeout, a periodic resync with jitter); ``workqueue`` is a keyed,
rate-limited work queue (client-go's default controller rate limiter; one worker per key at a
time); ``election`` is leader election on a ``coordination.k8s.io/v1`` Lease (released on a
graceful stop; work told to stop the moment renewal fails). Everything is thread-based, as
the rest of the house (the Kubernetes adapter is the synchronous official client).

The controller that reconciles an ``OdooTenant`` on these pieces is ``controller``.
This package talks to the Kubernetes API through the official client directly, as an adapter
does: the runtime is client plumbing (streams, Leases), not tenant logic.
"""
