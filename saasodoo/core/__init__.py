"""The pure core: tenant specs, plans, values, status classification. No I/O here.

Nothing in this package imports an adapter, the kubernetes client, pyhelm3 or touches
files, the network or the clock; everything it needs is passed in.
"""
