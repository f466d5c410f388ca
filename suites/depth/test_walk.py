"""Stateful random walks compared step by step with the reference model (seed recorded)."""
import pytest

from vfio_conform.api import save_stream


@pytest.mark.vc_spec("walk.model-agreement")
@pytest.mark.vc_requires("reset")
def test_random_walk(device, profile, sessions, vc_context, request):
    """`walk.examples` walks of `walk.steps` SETs, reads, writes, closes, PRECOPY_INFOs and resets."""
    from vfio_conform.api import WalkContext, run_walks   # loads hypothesis: only here
    stream = save_stream(device, sessions, keep=False)   # outlives sessions.close(): the walks write it
    with stream:
        sessions.close()                                   # the save's data fds; the walk resets the device
        seed = profile.walk.seed
        request.node.user_properties.append(("hypothesis_seed", seed))
        print(f"hypothesis seed {seed}: {profile.walk.examples} walks x {profile.walk.steps} steps")
        ctx = WalkContext(device, profile, stream, vc_context.kernel_release)
        run_walks(ctx, profile.walk.examples, profile.walk.steps, seed)
