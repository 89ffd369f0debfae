"""The module's Logic without Slicer (SlicerFMCoreLogic): one connection owning the
interactive, registration and automatic-segmentation features, scriptable without a widget
and driven by a Qt-free pump in background mode, against a real backend process."""

import threading

import numpy as np
from logic_helpers import ras_of, slicer_mask
from mrml_registration_pair import add_pair

from SlicerFMLib.connection import REMOTE, ConnectionSettings
from SlicerFMLib.logic import (AUTO_SEGMENTATION, CONNECTION, INTERACTIVE, REGISTRATION,
                               SlicerFMCoreLogic)
from SlicerFMLib.pump import WorkerPump
from SlicerFMLib.worker import BackgroundWorker, InlineRunner

INSIDE = (10, 15, 20)


def test_the_logic_owns_three_features_on_one_connection_with_a_runner_each_and_one_for_propagations():
    core = SlicerFMCoreLogic()
    features = core.features()
    assert set(features) == {INTERACTIVE, REGISTRATION, AUTO_SEGMENTATION}
    assert all(feature.connection is core.connection for feature in features.values())
    assert all(isinstance(runner, InlineRunner) for runner in core.runners())
    background = SlicerFMCoreLogic(background=True)
    runners = background.runners()
    assert len({id(r) for r in runners}) == 4 and all(isinstance(r, BackgroundWorker) for r in runners)
    assert background.interactive.propagationRunner in runners
    background.shutdown()


def test_a_script_connects_segments_and_registers_through_one_logic(
        a_backend_process, a_scene, a_block_volume, an_organ_segmentation):
    """The console workflow of the README: blocking calls, messages named by feature."""
    core = SlicerFMCoreLogic()
    messages = []
    core.messageCallback = lambda feature, text, level: messages.append((feature, level, text))
    status = core.connect(ConnectionSettings(mode=REMOTE, url=a_backend_process.url)).result
    try:
        assert status is core.status and core.servedEngines() == ["classic"]
        session = core.connection.client.session_token
        assert core.autoSegmentation.classCatalogue is None       # no vista3d served
        volume, _ = a_block_volume
        core.interactive.setInputs(volume, an_organ_segmentation, "organ")
        core.interactive.addPoint(ras_of(volume, INSIDE))
        assert slicer_mask(volume, an_organ_segmentation, "organ")[INSIDE]
        fixed, moving = add_pair(a_scene)
        core.registration.fixedVolume, core.registration.movingVolume = fixed, moving
        core.registration.pollSeconds = 0.1
        core.registration.run()
        assert core.registration.lastOutcome.transform_node.IsA("vtkMRMLGridTransformNode")
        assert core.connection.client.session_token == session        # one session for all
    finally:
        core.disconnect()
    assert core.status is None and not core.connection.connected
    features = [feature for feature, _, _ in messages]
    assert features[0] == CONNECTION and REGISTRATION in features
    assert all(level != "error" for _, level, _ in messages), messages


def test_in_background_mode_a_pump_delivers_every_feature_on_the_polling_thread(
        a_backend_process, a_scene, a_block_volume, an_organ_segmentation):
    core = SlicerFMCoreLogic(background=True)
    ticks_seen, changed_in = [], []
    core.changedCallback = lambda: changed_in.append(threading.get_ident())
    pump = WorkerPump(core.runners(), after_tick=lambda: ticks_seen.append(core.pendingInteraction()))
    try:
        task = core.connect(ConnectionSettings(mode=REMOTE, url=a_backend_process.url))
        assert not task.delivered and core.busy and core.status is None
        pump_until_idle(pump, core)
        assert core.status is not None and task.delivered
        volume, _ = a_block_volume
        core.interactive.setInputs(volume, an_organ_segmentation, "organ")
        click = core.interactive.addPoint(ras_of(volume, INSIDE))
        fixed, moving = add_pair(a_scene)
        core.registration.fixedVolume, core.registration.movingVolume = fixed, moving
        core.registration.pollSeconds = 0.1
        core.registration.run()
        assert core.pendingInteraction() is click
        assert [feature for feature, _ in core.activeJobs()] == [REGISTRATION]
        pump_until_idle(pump, core)
        assert click.delivered and slicer_mask(volume, an_organ_segmentation, "organ")[INSIDE]
        assert core.registration.lastOutcome is not None and core.activeJobs() == []
        assert set(changed_in) == {threading.get_ident()}
        assert ticks_seen[-1] is None                      # idle: no dialog to show
    finally:
        core.disconnect()
        core.shutdown()


def test_disconnect_cancels_queued_clicks_and_leaves_the_segment_as_it_was(
        a_backend_process, a_block_volume, an_organ_segmentation):
    core = SlicerFMCoreLogic(background=True)
    core.connect(ConnectionSettings(mode=REMOTE, url=a_backend_process.url))
    core.wait(60)
    volume, _ = a_block_volume
    core.interactive.setInputs(volume, an_organ_segmentation, "organ")
    before = slicer_mask(volume, an_organ_segmentation, "organ")
    core.interactive.addPoint(ras_of(volume, INSIDE))
    assert core.interactive.addPoint(ras_of(volume, (10, 12, 12)), positive=False) is None
    core.disconnect()
    core.shutdown()
    np.testing.assert_array_equal(slicer_mask(volume, an_organ_segmentation, "organ"), before)
    assert not core.busy and core.status is None


def pump_until_idle(pump, core, max_ticks=4000):
    """Tick like a front end's timer would until nothing is pending (bounded)."""
    for _ in range(max_ticks):
        if pump.tick() == 0 and not core.busy:
            return
    raise AssertionError(f"still busy after {max_ticks} ticks")


def test_the_pump_is_told_to_wait_only_while_data_moves():
    """An interaction, or a server job in its local stages (upload, download), yes; a job
    computing on the server, no (the pump would otherwise slow the UI for minutes)."""
    import threading

    from SlicerFMLib.worker import Task

    core = SlicerFMCoreLogic(background=True)
    try:
        assert not core.transferring()
        job = core.registration
        job.task = Task("registration")                  # running until delivered
        job.progress.local("uploading the volumes")
        assert core.transferring()
        job.progress.report({"state": "running", "stage": "demons", "done": 3, "total": 9})
        assert not core.transferring()
        job.progress.report({"state": "done"})           # downloading the field
        assert core.transferring()
        job.task.delivered = True
        assert not core.transferring()
        release = threading.Event()
        core.interactive.runner.submit(release.wait, 30)
        assert core.transferring()
        release.set()
        core.wait(10)
        assert not core.transferring()
    finally:
        core.shutdown()
