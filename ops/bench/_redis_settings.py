"""Settings for the bench's Redis run: portal.settings, with the channel layer's
Redis socket timeout lifted above channels-redis's 5 s blocking receive.

redis-py 8 gives every connection a 5 s socket timeout by default, the same as
channels-redis's BZPOPMIN timeout, so an idle receive loop raises
redis.exceptions.TimeoutError and the consumer dies (close 1011). Used only while
portal/settings.py does not set the timeout itself.
"""
from portal.settings import *  # noqa: F401,F403
from portal.settings import CHANNEL_LAYERS

for _host_list in (c.get("CONFIG", {}).get("hosts", []) for c in CHANNEL_LAYERS.values()):
    for _i, _host in enumerate(_host_list):
        if isinstance(_host, str):
            _host_list[_i] = {"address": _host, "socket_timeout": None}
