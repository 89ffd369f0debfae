"""SlicerFM: segmentation and registration with foundation models served by a SlicerFM backend.

Module / ParameterNode / Widget / Logic / Test, as in Slicer's scripted-module template.
The work is done by :class:`SlicerFMLib.logic.SlicerFMCoreLogic` (Qt-free, scriptable from
the Python console, reused by other front ends); the policies of the panel (progress
dialog, restoring choices, box prompts, shortcuts) are plain-Python presenters in
SlicerFMLib. This file holds the Slicer- and Qt-specific wiring only.
"""

from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from SlicerFMLib.client_setup import ensure_client_importable, ensure_dependencies

ensure_client_importable()   # bundled beside this file, or ../client in a checkout

from SlicerFMLib.box_prompt import BoxPromptCoalescer, roi_signature  # noqa: E402
from SlicerFMLib.choice_presenters import EngineChoicePresenter, SegmentChoicePresenter  # noqa: E402
from SlicerFMLib.class_picker import ClassTreePicker  # noqa: E402
from SlicerFMLib.connection import ConnectionSettings, default_log_path  # noqa: E402
from SlicerFMLib.job_bars import JobBar, JobBarsPresenter, box_tool_tip  # noqa: E402
from SlicerFMLib.logic import AUTO_SEGMENTATION, PROPAGATION, REGISTRATION, SlicerFMCoreLogic  # noqa: E402
from SlicerFMLib.progress_presenter import ProgressPresenter, QtProgressDialogView  # noqa: E402
from SlicerFMLib.prompt_nodes import BOX, NEGATIVE, POSITIVE, prompt_nodes  # noqa: E402
from SlicerFMLib.pump import TimerPump, WorkerPump  # noqa: E402
from SlicerFMLib.self_test import SlicerFMTest  # noqa: E402,F401  (Slicer looks for <Module>Test here)
from SlicerFMLib.shortcuts import ShortcutSet, qt_shortcut_factory  # noqa: E402
from SlicerFMLib.undo import SegmentEditorHistory, existing_segment_editor  # noqa: E402

SHORTCUTS = {"Alt+P": "positive", "Alt+N": "negative", "Alt+B": "box",
             "Ctrl+Alt+Z": "undo", "Ctrl+Alt+Y": "redo"}
COLOURS = {"error": "#c62828", "warning": "#b26a00"}


class SlicerFM(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SlicerFM")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        # SegmentEditor: its undo history and masking settings are used when it exists
        self.parent.dependencies = ["Segmentations", "SegmentEditor", "Markups"]
        self.parent.contributors = ["SlicerFM developers"]
        self.parent.helpText = _(
            "Segment with foundation models running in a SlicerFM backend, on this computer "
            "(local) or on a shared GPU server (remote). Place positive/negative points or a "
            "box; only the selected segment changes, only where the result changed. "
            "Shortcuts: Alt+P / Alt+N / Alt+B point and box tools, Ctrl+Alt+Z undo and "
            "Ctrl+Alt+Y redo of AI steps. Registration: align a moving scan onto a fixed one "
            "(grid transform, hardened copy, segments carried across). Automatic "
            "segmentation: named segments for the chosen classes (VISTA3D), refined with "
            "point clicks.")
        self.parent.acknowledgementText = _("SlicerFM is developed by its contributors.")


@parameterNodeWrapper
class SlicerFMParameterNode:
    """Module settings saved with the scene (never the access token).

    connectionMode: "local" (start a backend process) or "remote".
    backendPath: local backend executable / Python / environment ("" = on PATH).
    localEngines, localDevice: what the local backend serves and on which device.
    serverUrl: remote server address (http:// or https://).
    caBundle: remote https:// server: PEM file of the lab's certificate authority ("" = the
        system's store). allowInsecureHttp: remote plain http:// to another machine allowed.
    inputVolume, segmentationNode, segmentID: what is segmented and where it goes.
    engine: the server engine used for interactions.
    registration*: the Registration section (volumes, modalities, engine, instance
    optimisation steps (-1 = the engine's default), similarity, affine, hardened copy).
    autoEverything: the Automatic segmentation section's "everything".
    """

    connectionMode: Annotated[str, Choice(["local", "remote"])] = "local"
    backendPath: str = ""
    localEngines: str = "classic"
    localDevice: str = "auto"
    serverUrl: str = "http://127.0.0.1:8765"
    caBundle: str = ""
    allowInsecureHttp: bool = False
    inputVolume: vtkMRMLScalarVolumeNode
    segmentationNode: vtkMRMLSegmentationNode
    segmentID: str = ""
    engine: str = "classic"
    registrationFixedVolume: vtkMRMLScalarVolumeNode
    registrationMovingVolume: vtkMRMLScalarVolumeNode
    registrationFixedModality: Annotated[str, Choice(["auto", "CT", "MR", "other"])] = "auto"
    registrationMovingModality: Annotated[str, Choice(["auto", "CT", "MR", "other"])] = "auto"
    registrationEngine: Annotated[str, Choice(["classic", "unigradicon", "multigradicon"])] = "classic"
    # WithinRange: the spin box connector sets the box's range from it (without, the full
    # int range, and -1 would no longer be the minimum that shows "engine default")
    registrationIoSteps: Annotated[int, WithinRange(-1, 500)] = -1
    registrationSimilarity: Annotated[str, Choice(["default", "lncc", "lncc2", "mind"])] = "default"
    registrationAffine: bool = False
    registrationHarden: bool = False
    autoEverything: bool = False


class SlicerFMWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._prompts = {}

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SlicerFM.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = SlicerFMLogic(background=True)
        self.logic.messageCallback = self.showMessage
        self.logic.changedCallback = self.updateGUI
        self.logic.catalogueCallback = self.showClasses
        self.progress = ProgressPresenter(
            QtProgressDialogView.factory(lambda: slicer.util.createProgressDialog(maximum=0)),
            cancel=lambda task: self.logic.interactive.cancel())
        self.pump = TimerPump(WorkerPump(self.logic.runners(), after_tick=self.afterTick,
                                         should_wait=self.logic.transferring), qt.QTimer())
        self.engineChoice = EngineChoicePresenter(self.ui.engineComboBox, self.savedEngine, self.saveEngine)
        self.segmentChoice = SegmentChoicePresenter(self.ui.segmentSelector, self.savedSegment, self.saveSegment)
        self.boxPrompt = BoxPromptCoalescer(lambda fn: qt.QTimer.singleShot(0, fn),
                                            lambda: roi_signature(self._prompts.get(BOX)), self.sendBox)
        self.shortcuts = ShortcutSet(qt_shortcut_factory(qt.QShortcut, qt.QKeySequence, slicer.util.mainWindow()))
        self.classPicker = ClassTreePicker(self.ui.classTreeWidget, self.ui.classGroupComboBox, qt)
        self.jobBars = JobBarsPresenter(self.logic, {
            REGISTRATION: JobBar(self.ui.registrationProgressBar, self.ui.registrationStatusLabel),
            AUTO_SEGMENTATION: JobBar(self.ui.autoProgressBar, self.ui.autoStatusLabel),
            PROPAGATION: JobBar(self.ui.propagationProgressBar, None, self.ui.cancelPropagationButton,
                                hide_idle=True)})
        self.connectSignals()
        self.pump.start()
        self.initializeParameterNode()

    def connectSignals(self) -> None:
        ui, interactive = self.ui, self.logic.interactive
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        interaction = slicer.app.applicationLogic().GetInteractionNode()
        self.addObserver(interaction, interaction.InteractionModeChangedEvent, self.onInteractionModeChanged)
        ui.connectButton.connect("clicked(bool)", self.onConnect)
        ui.disconnectButton.connect("clicked(bool)", self.onDisconnect)
        ui.connectionModeComboBox.connect("currentIndexChanged(int)", self.updateGUI)
        ui.segmentSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.segmentChoice.nodeChanged)
        ui.segmentSelector.connect("currentSegmentChanged(QString)", self.segmentChoice.segmentChanged)
        ui.engineComboBox.connect("currentTextChanged(QString)", self.engineChoice.userChose)
        for role, button in self.toolButtons().items():
            button.connect("toggled(bool)", lambda checked, role=role: self.setPlaceMode(role, checked))
        ui.undoButton.connect("clicked(bool)", lambda: self.run(interactive.undo))
        ui.redoButton.connect("clicked(bool)", lambda: self.run(interactive.redo))
        ui.resetButton.connect("clicked(bool)", lambda: self.run(interactive.resetSegment))
        ui.lockButton.connect("clicked(bool)", lambda locked: self.run(interactive.setSegmentLocked, locked))
        ui.registerButton.connect("clicked(bool)", self.onRegister)
        ui.cancelRegistrationButton.connect("clicked(bool)", self.logic.registration.cancel)
        ui.carryButton.connect("clicked(bool)", self.onCarrySegments)
        ui.runAutoButton.connect("clicked(bool)", self.onRunAutoSegmentation)
        ui.cancelAutoButton.connect("clicked(bool)", self.logic.autoSegmentation.cancel)
        ui.classSearchLineEdit.connect("textChanged(QString)", self.filterClasses)
        ui.classGroupComboBox.connect("currentIndexChanged(int)", self.filterClasses)
        slicer.app.connect("aboutToQuit()", self.logic.disconnect)

    def toolButtons(self) -> dict:
        return {POSITIVE: self.ui.positivePointButton, NEGATIVE: self.ui.negativePointButton,
                BOX: self.ui.boxButton}

    def cleanup(self) -> None:
        """Module reload or application exit (``exit()`` is not called then)."""
        self.shortcuts.remove()
        self.removeObservers()
        self.pump.stop()
        self.progress.close()
        if self.logic is not None:
            slicer.app.disconnect("aboutToQuit()", self.logic.disconnect)
            self.logic.interactive.removeObservers()
            self.logic.disconnect()
            self.logic.shutdown()

    def enter(self) -> None:
        self.initializeParameterNode()
        actions = {"positive": self.ui.positivePointButton.toggle,
                   "negative": self.ui.negativePointButton.toggle, "box": self.ui.boxButton.toggle,
                   "undo": lambda: self.run(self.logic.interactive.undo),
                   "redo": lambda: self.run(self.logic.interactive.redo)}
        self.shortcuts.install({keys: actions[name] for keys, name in SHORTCUTS.items()})

    def exit(self) -> None:
        self.shortcuts.remove()
        for button in self.toolButtons().values():
            button.checked = False
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.logic.cancel()
        self.logic.interactive.removeObservers()
        self._prompts = {}
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # -- parameter node -------------------------------------------------------------------

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            volume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if volume:
                self._parameterNode.inputVolume = volume
        if not self._prompts:
            self._prompts = prompt_nodes(slicer.mrmlScene)
            self.logic.interactive.observePromptNodes(self._prompts[POSITIVE], self._prompts[NEGATIVE])
            roi = self._prompts[BOX]
            for event in (roi.PointPositionDefinedEvent, roi.PointEndInteractionEvent):
                self.addObserver(roi, event, self.boxPrompt.boxChanged)

    def setParameterNode(self, inputParameterNode: Optional[SlicerFMParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.segmentChoice.restore()
            self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        node = self._parameterNode
        if node is None:
            return
        self.logic.interactive.setInputs(node.inputVolume, node.segmentationNode, node.segmentID)
        self.logic.interactive.engine = node.engine
        # only when the Segment Editor's node exists: never create it (see SegmentEditorHistory)
        self.logic.interactive.editorNode = slicer.mrmlScene.GetSingletonNode(
            "SegmentEditor", "vtkMRMLSegmentEditorNode")
        self.updateGUI()

    def savedSegment(self):
        node = self._parameterNode
        return (node.segmentationNode, node.segmentID) if node else (None, "")

    def saveSegment(self, segmentation, segmentID: str) -> None:
        if self._parameterNode:
            self._parameterNode.segmentationNode = segmentation
            self._parameterNode.segmentID = segmentID or ""

    def savedEngine(self) -> str:
        return self._parameterNode.engine if self._parameterNode else ""

    def saveEngine(self, name: str) -> None:
        if self._parameterNode:
            self._parameterNode.engine = name

    # -- connection -------------------------------------------------------------------------

    def connectionSettings(self) -> ConnectionSettings:
        node = self._parameterNode
        return ConnectionSettings(mode=node.connectionMode, url=node.serverUrl,
                                  token=self.ui.tokenLineEdit.text, ca_bundle=node.caBundle.strip(),
                                  allow_insecure_http=node.allowInsecureHttp, backend=node.backendPath,
                                  engines=node.localEngines, device=node.localDevice,
                                  log_path=default_log_path())

    def onConnect(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to connect to the SlicerFM backend."), waitCursor=True):
            self.ui.statusLabel.text = _("Connecting...")
            self.logic.connect(self.connectionSettings(), onDone=self.onConnected)

    def onConnected(self, status) -> None:
        self.engineChoice.populate(self.logic.servedEngines())
        if self.logic.autoSegmentation.engine not in self.logic.servedEngines():
            self.classPicker.clear()
            self.ui.autoStatusLabel.text = _("The server serves no automatic segmentation engine "
                                             "(start it with --engines ...,vista3d).")

    def onDisconnect(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to disconnect."), waitCursor=True):
            self.logic.disconnect()

    # -- interactive segmentation -------------------------------------------------------------

    def run(self, action, *args) -> None:
        with slicer.util.tryWithErrorDisplay(_("SlicerFM could not do this."), waitCursor=False):
            action(*args)

    def setPlaceMode(self, role: str, checked: bool) -> None:
        appLogic = slicer.app.applicationLogic()
        interaction = appLogic.GetInteractionNode()
        if not checked:
            if not any(b.checked for b in self.toolButtons().values()):
                interaction.SetCurrentInteractionMode(interaction.ViewTransform)
            return
        for other, button in self.toolButtons().items():
            if other != role:
                button.checked = False
        node = self._prompts[role]
        if role == BOX:
            node.RemoveAllControlPoints()      # a new box replaces the previous one
            self.boxPrompt.forget()
        selection = appLogic.GetSelectionNode()
        selection.SetReferenceActivePlaceNodeClassName(node.GetClassName())
        selection.SetActivePlaceNodeID(node.GetID())
        interaction.SetPlaceModePersistence(role != BOX)
        interaction.SetCurrentInteractionMode(interaction.Place)

    def onInteractionModeChanged(self, caller, event) -> None:
        if caller.GetCurrentInteractionMode() != caller.Place:
            for button in self.toolButtons().values():
                blocked = button.blockSignals(True)
                button.checked = False
                button.blockSignals(blocked)

    def sendBox(self) -> None:
        """The placed box: with a slice engine, a slice box on the slice shown by the view the
        mouse is in (an oblique view is refused with a message saying what to do)."""
        self.run(self.logic.interactive.addBox, self._prompts[BOX])

    # -- registration and automatic segmentation (background server jobs) -----------------

    def onRegister(self) -> None:
        node, logic = self._parameterNode, self.logic.registration
        with slicer.util.tryWithErrorDisplay(_("SlicerFM could not start the registration."), waitCursor=True):
            logic.fixedVolume = node.registrationFixedVolume
            logic.movingVolume = node.registrationMovingVolume
            logic.fixedMask = self.maskChoice(self.ui.fixedMaskSelector)
            logic.movingMask = self.maskChoice(self.ui.movingMaskSelector)
            logic.fixedModality = node.registrationFixedModality
            logic.movingModality = node.registrationMovingModality
            logic.engine = node.registrationEngine
            logic.ioSteps = None if node.registrationIoSteps < 0 else node.registrationIoSteps
            logic.similarity = None if node.registrationSimilarity == "default" else node.registrationSimilarity
            logic.affinePrealign = node.registrationAffine
            logic.harden = node.registrationHarden
            logic.run(onDone=self.onRegistered)
            self.updateGUI()

    @staticmethod
    def maskChoice(selector):
        segmentation, segmentID = selector.currentNode(), selector.currentSegmentID()
        return (segmentation, segmentID) if segmentation is not None and segmentID else None

    def onRegistered(self, outcome) -> None:
        if outcome is not None:
            slicer.util.setSliceViewerLayers(background=self.logic.registration.fixedVolume,
                                             foreground=self.logic.registration.movingVolume,
                                             foregroundOpacity=0.5)

    def onCarrySegments(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("SlicerFM could not carry the segments."), waitCursor=True):
            source = self.ui.carrySegmentationSelector.currentNode()
            if source is None:
                raise ValueError(_("choose the segmentation drawn on the moving scan"))
            registration = self.logic.registration
            registration.fixedVolume = self._parameterNode.registrationFixedVolume
            carried = registration.carrySegments(source)
            # ready for the point tools: the fixed volume and the carried segmentation
            self._parameterNode.inputVolume = registration.fixedVolume
            self.saveSegment(carried, "")
            self.segmentChoice.restore()

    def showClasses(self, catalogue) -> None:
        self.classPicker.populate(catalogue)
        count = len(catalogue.everything())
        self.ui.everythingCheckBox.text = _("Everything ({count} classes)").format(count=count)
        self.filterClasses()

    def filterClasses(self, *args) -> None:
        self.classPicker.filter(self.ui.classSearchLineEdit.text)

    def onRunAutoSegmentation(self) -> None:
        node, logic = self._parameterNode, self.logic.autoSegmentation
        message = _("SlicerFM could not start the automatic segmentation.")
        with slicer.util.tryWithErrorDisplay(message, waitCursor=True):
            logic.volumeNode = node.inputVolume
            logic.segmentationNode = node.segmentationNode
            logic.modality = self.logic.interactive.modality
            logic.run(self.classPicker.checked(), everything=node.autoEverything)
            self.updateGUI()

    # -- feedback ---------------------------------------------------------------------------

    def afterTick(self) -> None:
        """After each pump tick: the waiting dialog, and the server jobs' progress bars
        (registration, automatic segmentation, a slice engine's propagation with its Cancel)."""
        self.progress.update(self.logic.pendingInteraction())
        self.jobBars.update()

    def showMessage(self, feature: str, text: str, level: str) -> None:
        label = {REGISTRATION: self.ui.registrationStatusLabel,
                 AUTO_SEGMENTATION: self.ui.autoStatusLabel}.get(feature, self.ui.messageLabel)
        colour = COLOURS.get(level, "")
        label.setStyleSheet(f"color: {colour}" if colour else "")
        label.text = text
        slicer.util.showStatusMessage(f"SlicerFM: {text}", 5000)

    def updateGUI(self, *args) -> None:
        node = self._parameterNode
        if node is None:
            return
        status, interactive = self.logic.status, self.logic.interactive
        self.ui.statusLabel.text = status.summary() if status else _("Not connected.")
        local = node.connectionMode == "local"
        for widget in (self.ui.backendPathLineEdit, self.ui.localEnginesLineEdit, self.ui.localDeviceLineEdit):
            widget.enabled = local
        for widget in (self.ui.serverUrlLineEdit, self.ui.tokenLineEdit, self.ui.caBundleLineEdit,
                       self.ui.allowInsecureHttpCheckBox):
            widget.enabled = not local
        connected = status is not None
        ready = connected and bool(node.inputVolume) and bool(node.segmentationNode) and bool(node.segmentID)
        locked = ready and interactive.isSegmentLocked()
        for button in list(self.toolButtons().values()) + [self.ui.resetButton]:
            button.enabled = ready and not locked
        self.ui.undoButton.enabled = ready and not locked and interactive.canUndo()
        self.ui.redoButton.enabled = ready and not locked and interactive.canRedo()
        self.ui.lockButton.enabled = ready
        self.ui.boxButton.toolTip = box_tool_tip(connected and interactive.slicePrompts())
        self.ui.lockButton.checked = locked
        self.ui.disconnectButton.enabled = connected
        self.updateJobButtons(connected)

    def updateJobButtons(self, connected: bool) -> None:
        node = self._parameterNode
        registering = self.logic.registration.running
        segmenting = self.logic.autoSegmentation.running
        self.ui.registerButton.enabled = connected and not registering and \
            bool(node.registrationFixedVolume) and bool(node.registrationMovingVolume)
        self.ui.cancelRegistrationButton.enabled = registering
        self.ui.carryButton.enabled = self.logic.registration.lastOutcome is not None and not registering
        self.ui.runAutoButton.enabled = connected and not segmenting and bool(node.inputVolume) \
            and bool(node.segmentationNode)
        self.ui.cancelAutoButton.enabled = segmenting
        self.ui.classTreeWidget.enabled = not node.autoEverything


class SlicerFMLogic(SlicerFMCoreLogic, ScriptedLoadableModuleLogic):
    """The module's Logic: :class:`SlicerFMLib.logic.SlicerFMCoreLogic` (one connection;
    ``interactive``, ``registration``, ``autoSegmentation``) plus Slicer's parameter node,
    the Segment Editor's undo history and Slicer's Python packaging. From the Python
    console (calls block and raise errors there)::

        import SlicerFM
        logic = SlicerFM.SlicerFMLogic()
        logic.connect(ConnectionSettings(mode="remote", url="http://gpu:8765", token="..."))
        logic.interactive.setInputs(volumeNode, segmentationNode, segmentID)
        logic.interactive.addPoint([10.0, -25.0, 40.0], positive=True)   # world RAS mm
    """

    def __init__(self, background: bool = False) -> None:
        SlicerFMCoreLogic.__init__(self, background)
        ScriptedLoadableModuleLogic.__init__(self)     # its super().__init__() is object's
        for feature in (self.interactive, self.autoSegmentation):
            feature.segmentationHistory = SegmentEditorHistory(
                lambda feature=feature: feature.segmentationNode,
                lambda: existing_segment_editor(slicer.modules))

    def getParameterNode(self):
        return SlicerFMParameterNode(super().getParameterNode())

    def connect(self, settings, onDone=None):
        ensure_dependencies()
        return SlicerFMCoreLogic.connect(self, settings, onDone)
