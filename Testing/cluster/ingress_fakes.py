"""The cluster's image store and Ray's actor handles, faked for in-process tests of the
ingress and its workers (no Ray processes)."""

import asyncio

from ray import exceptions as ray_exceptions


class SharedDict:
    """The cluster's image store as a dict (the SharedImages protocol)."""

    def __init__(self):
        self.images, self.owner_sets = {}, {}

    def owners(self, image_id):
        return set(self.owner_sets[image_id]) if image_id in self.images else None

    def contains(self, image_id):
        return image_id in self.images

    def fetch(self, image_id):
        return self.images.get(image_id)

    def publish(self, image):
        self.owner_sets.setdefault(image.image_id, set()).update(getattr(image, "owners", ()))
        return self.images.setdefault(image.image_id, image)

    def add_owner(self, image_id, owner):
        self.owner_sets.setdefault(image_id, set()).add(owner)


class Method:
    def __init__(self, handle, name):
        self.handle, self.name = handle, name

    def remote(self, *args):
        async def run():
            if self.handle.dead:
                raise ray_exceptions.ActorDiedError()
            answer = await getattr(self.handle.worker, self.name)(*args)
            if self.handle.dies_in_next_request and self.name in ("handle", "finish"):
                # the request was applied (and journaled), then the process died before answering
                self.handle.dies_in_next_request, self.handle.dead = False, True
                raise ray_exceptions.ActorDiedError()
            return answer
        return run()


class Handle:
    """A worker as the ingress sees it through Ray. ``dead``: its process is gone;
    ``dies_in_next_request``: it dies after running the next request, before answering."""

    def __init__(self, worker):
        self.worker, self.dead, self.dies_in_next_request = worker, False, False

    def __getattr__(self, name):
        return Method(self, name)


def run(handles, scenario):
    """``asyncio.run(scenario())``, after which the workers' applications stop in the same
    event loop (their lifespans started in it), as a server's do at its end."""

    async def whole():
        try:
            return await scenario()
        finally:
            for handle in handles:
                await handle.worker.shutdown()

    return asyncio.run(whole())
