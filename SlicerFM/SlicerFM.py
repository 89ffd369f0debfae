"""SlicerFM: interactive segmentation with foundation models served by a SlicerFM backend.

Module / ParameterNode / Widget / Logic / Test, as in Slicer's scripted-module template.
The work is done by :class:`SlicerFMLib.logic.InteractiveSegmentationLogic` (Qt-free, usable
from the Python console); this file holds the Slicer- and Qt-specific parts only.
"""

import logging
import os
import shutil
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (ScriptedLoadableModule, ScriptedLoadableModuleLogic,
                                           ScriptedLoadableModuleTest,
                                           ScriptedLoadableModuleWidget)
from slicer.util import VTKObservationMixin

from SlicerFMLib.client_setup import ensure_client_importable, ensure_dependencies

ensure_client_importable()   # bundled beside this file, or ../client in a checkout

from SlicerFMLib.auto_segment_logic import AutoSegmentationLogic  # noqa: E402
from SlicerFMLib.connection import ConnectionSettings, default_log_path  # noqa: E402
from SlicerFMLib.logic import InteractiveSegmentationLogic  # noqa: E402
from SlicerFMLib.prompt_nodes import BOX, NEGATIVE, POSITIVE, prompt_nodes  # noqa: E402
from SlicerFMLib.registration_logic import RegistrationLogic  # noqa: E402
from SlicerFMLib.undo import save_state_for_undo  # noqa: E402
from SlicerFMLib.worker import BackgroundWorker, QtWorkerPump  # noqa: E402

SHORTCUTS = {"Alt+P": "positive", "Alt+N": "negative", "Alt+B": "box",
             "Ctrl+Alt+Z": "undo", "Ctrl+Alt+Y": "redo"}


class SlicerFM(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("SlicerFM")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["Segmentations", "Markups"]
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
    inputVolume: vtkMRMLScalarVolumeNode
    segmentationNode: vtkMRMLSegmentationNode
    segmentID: str = ""
    engine: str = "classic"
    registrationFixedVolume: vtkMRMLScalarVolumeNode
    registrationMovingVolume: vtkMRMLScalarVolumeNode
    registrationFixedModality: Annotated[str, Choice(["auto", "CT", "MR", "other"])] = "auto"
    registrationMovingModality: Annotated[str, Choice(["auto", "CT", "MR", "other"])] = "auto"
    registrationEngine: Annotated[str, Choice(["classic", "unigradicon", "multigradicon"])] = "classic"
    registrationIoSteps: int = -1
    registrationSimilarity: Annotated[str, Choice(["default", "lncc", "lncc2", "mind"])] = "default"
    registrationAffine: bool = False
    registrationHarden: bool = False
    autoEverything: bool = False


class SegmentEditorHistory:
    """``SaveState()`` for the Logic: an undo state in the Segment Editor (so its Ctrl+Z
    undoes SlicerFM edits) when it edits the same segmentation, else MRML scene undo."""

    def __init__(self, logic):
        self.logic = logic          # anything with a ``segmentationNode`` attribute

    def SaveState(self) -> bool:
        segmentation = self.logic.segmentationNode
        widget = slicer.modules.segmenteditor.widgetRepresentation()
        editor = getattr(widget.self(), "editor", None) if widget is not None else None
        if editor is not None and editor.segmentationNode() is segmentation:
            editor.saveStateForUndo()
            return True
        return save_state_for_undo(segmentation)


class SlicerFMWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._prompts = {}
        self._shortcuts = []
        self._progress = None
        self.registration = None
        self.autoSegmentation = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SlicerFM.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.worker = BackgroundWorker()
        self.pump = QtWorkerPump(self.worker, on_slow=self.showProgress, on_idle=self.hideProgress)
        self.logic = SlicerFMLogic(runner=self.worker)
        self.logic.messageCallback = self.showMessage
        self.logic.changedCallback = self.updateGUI
        self.logic.segmentationHistory = SegmentEditorHistory(self.logic)
        self.setupJobSections()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.connectButton.connect("clicked(bool)", self.onConnect)
        self.ui.disconnectButton.connect("clicked(bool)", self.onDisconnect)
        self.ui.connectionModeComboBox.connect("currentIndexChanged(int)", self.updateGUI)
        self.ui.segmentSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onSegmentationChanged)
        self.ui.segmentSelector.connect("currentSegmentChanged(QString)", self.onSegmentChanged)
        self.ui.engineComboBox.connect("currentTextChanged(QString)", self.onEngineChanged)
        for role, button in self.toolButtons().items():
            button.connect("toggled(bool)", lambda checked, role=role: self.setPlaceMode(role, checked))
        self.ui.undoButton.connect("clicked(bool)", lambda: self.run(self.logic.undo))
        self.ui.redoButton.connect("clicked(bool)", lambda: self.run(self.logic.redo))
        self.ui.resetButton.connect("clicked(bool)", lambda: self.run(self.logic.resetSegment))
        self.ui.lockButton.connect("clicked(bool)", lambda locked: self.run(self.logic.setSegmentLocked, locked))
        interaction = slicer.app.applicationLogic().GetInteractionNode()
        self.addObserver(interaction, interaction.InteractionModeChangedEvent, self.onInteractionModeChanged)
        slicer.app.connect("aboutToQuit()", self.logic.disconnect)
        self.pump.start()
        self.initializeParameterNode()

    def toolButtons(self) -> dict:
        return {POSITIVE: self.ui.positivePointButton, NEGATIVE: self.ui.negativePointButton,
                BOX: self.ui.boxButton}

    def cleanup(self) -> None:
        self.removeObservers()
        self.pump.stop()
        self.jobTimer.stop()
        for logic, pump, worker in self.jobLogics():
            logic.cancel()
            pump.stop()
            worker.shutdown()
        if self.logic is not None:
            self.logic.removeObservers()
            self.logic.disconnect()
        self.worker.shutdown()

    def enter(self) -> None:
        self.initializeParameterNode()
        self._shortcuts = []
        actions = {"positive": lambda: self.ui.positivePointButton.toggle(),
                   "negative": lambda: self.ui.negativePointButton.toggle(),
                   "box": lambda: self.ui.boxButton.toggle(),
                   "undo": lambda: self.run(self.logic.undo),
                   "redo": lambda: self.run(self.logic.redo)}
        for keys, action in SHORTCUTS.items():
            shortcut = qt.QShortcut(qt.QKeySequence(keys), slicer.util.mainWindow())
            shortcut.connect("activated()", actions[action])
            self._shortcuts.append(shortcut)

    def exit(self) -> None:
        for shortcut in self._shortcuts:
            shortcut.disconnect("activated()")
            shortcut.setParent(None)
        self._shortcuts = []
        for button in self.toolButtons().values():
            button.checked = False
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.logic.cancel()
        for jobLogic, _pump, _worker in self.jobLogics():
            jobLogic.cancel()
        self.logic.removeObservers()
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
            self.logic.observePromptNodes(self._prompts[POSITIVE], self._prompts[NEGATIVE])
            roi = self._prompts[BOX]
            for event in (roi.PointPositionDefinedEvent, roi.PointEndInteractionEvent):
                self.addObserver(roi, event, self.onBoxChanged)

    def setParameterNode(self, inputParameterNode: Optional[SlicerFMParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.ui.segmentSelector.setCurrentNode(self._parameterNode.segmentationNode)
            if self._parameterNode.segmentID:
                self.ui.segmentSelector.setCurrentSegmentID(self._parameterNode.segmentID)
            self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        node = self._parameterNode
        if node is None:
            return
        self.logic.setInputs(node.inputVolume, node.segmentationNode, node.segmentID)
        self.logic.engine = node.engine
        self.logic.editorNode = slicer.mrmlScene.GetSingletonNode("SegmentEditor", "vtkMRMLSegmentEditorNode")
        self.updateGUI()

    def onSegmentationChanged(self, node) -> None:
        if self._parameterNode:
            self._parameterNode.segmentationNode = node

    def onSegmentChanged(self, segmentID) -> None:
        if self._parameterNode:
            self._parameterNode.segmentID = segmentID or ""

    def onEngineChanged(self, name) -> None:
        if self._parameterNode and name:
            self._parameterNode.engine = name

    # -- connection -------------------------------------------------------------------------

    def connectionSettings(self) -> ConnectionSettings:
        node = self._parameterNode
        return ConnectionSettings(mode=node.connectionMode, url=node.serverUrl,
                                  token=self.ui.tokenLineEdit.text, backend=node.backendPath,
                                  engines=node.localEngines, device=node.localDevice,
                                  log_path=default_log_path())

    def onConnect(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to connect to the SlicerFM backend."), waitCursor=True):
            ensure_dependencies()
            self.ui.statusLabel.text = _("Connecting...")
            self.logic.connect(self.connectionSettings(), onDone=self.onConnected)

    def onConnected(self, status) -> None:
        self.ui.engineComboBox.clear()
        for engine in status.engines:
            self.ui.engineComboBox.addItem(engine["name"])
        index = self.ui.engineComboBox.findText(self._parameterNode.engine)
        self.ui.engineComboBox.setCurrentIndex(max(index, 0))
        self.loadClasses(status)
        self.updateGUI()

    def onDisconnect(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to disconnect."), waitCursor=True):
            for jobLogic, _pump, worker in self.jobLogics():
                jobLogic.cancel()            # the server stops the job at its next step
                try:
                    worker.wait(10.0)
                except TimeoutError:         # e.g. still uploading: it fails once disconnected
                    logging.warning("SlicerFM: a %s was still running at disconnect", jobLogic.description)
            self.logic.disconnect()

    # -- tools -------------------------------------------------------------------------------

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
        selection = appLogic.GetSelectionNode()
        selection.SetReferenceActivePlaceNodeClassName(node.GetClassName())
        selection.SetActivePlaceNodeID(node.GetID())
        interaction.SetPlaceModePersistence(role != BOX)
        interaction.SetCurrentInteractionMode(interaction.Place)

    def onInteractionModeChanged(self, caller, event) -> None:
        if caller.GetCurrentInteractionMode() != caller.Place:
            for button in self.toolButtons().values():
                button.blockSignals(True)
                button.checked = False
                button.blockSignals(False)

    def onBoxChanged(self, caller, event) -> None:
        # Deferred: the ROI's size is set after its position when it is placed.
        qt.QTimer.singleShot(0, self.sendBox)

    def sendBox(self) -> None:
        roi = self._prompts.get(BOX)
        if roi is None or roi.GetNumberOfDefinedControlPoints() == 0 or min(roi.GetSize()) <= 0:
            return
        self.run(self.logic.addBox, roi)

    # -- registration and automatic segmentation (background server jobs) -----------------

    def setupJobSections(self) -> None:
        """Both long-job Logics share the connection and run on workers of their own, so a
        running job never delays a click."""
        self.registrationWorker, self.autoWorker = BackgroundWorker(), BackgroundWorker()
        self.registrationPump = QtWorkerPump(self.registrationWorker)
        self.autoPump = QtWorkerPump(self.autoWorker)
        self.registration = RegistrationLogic(self.logic.connection, runner=self.registrationWorker)
        self.autoSegmentation = AutoSegmentationLogic(self.logic.connection, runner=self.autoWorker)
        self.autoSegmentation.segmentationHistory = SegmentEditorHistory(self.autoSegmentation)
        self.registration.messageCallback = (
            lambda text, level: self.showJobMessage(self.ui.registrationStatusLabel, text, level))
        self.autoSegmentation.messageCallback = (
            lambda text, level: self.showJobMessage(self.ui.autoStatusLabel, text, level))
        for jobLogic, pump, _worker in self.jobLogics():
            jobLogic.changedCallback = self.updateGUI
            pump.start()
        self.jobTimer = qt.QTimer()
        self.jobTimer.setInterval(250)
        self.jobTimer.connect("timeout()", self.updateJobProgress)
        self.jobTimer.start()
        self.ui.registerButton.connect("clicked(bool)", self.onRegister)
        self.ui.cancelRegistrationButton.connect("clicked(bool)", self.registration.cancel)
        self.ui.carryButton.connect("clicked(bool)", self.onCarrySegments)
        self.ui.runAutoButton.connect("clicked(bool)", self.onRunAutoSegmentation)
        self.ui.cancelAutoButton.connect("clicked(bool)", self.autoSegmentation.cancel)
        self.ui.classSearchLineEdit.connect("textChanged(QString)", self.filterClasses)
        self.ui.classGroupComboBox.connect("currentIndexChanged(int)", self.filterClasses)

    def jobLogics(self) -> list:
        if self.registration is None:
            return []
        return [(self.registration, self.registrationPump, self.registrationWorker),
                (self.autoSegmentation, self.autoPump, self.autoWorker)]

    def onRegister(self) -> None:
        node = self._parameterNode
        logic = self.registration
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
        segmentation = selector.currentNode()
        segmentID = selector.currentSegmentID()
        return (segmentation, segmentID) if segmentation is not None and segmentID else None

    def onRegistered(self, outcome) -> None:
        if outcome is None:
            return
        slicer.util.setSliceViewerLayers(background=self.registration.fixedVolume,
                                         foreground=self.registration.movingVolume,
                                         foregroundOpacity=0.5)

    def onCarrySegments(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("SlicerFM could not carry the segments."), waitCursor=True):
            source = self.ui.carrySegmentationSelector.currentNode()
            if source is None:
                raise ValueError(_("choose the segmentation drawn on the moving scan"))
            self.registration.fixedVolume = self._parameterNode.registrationFixedVolume
            carried = self.registration.carrySegments(source)
            # ready for the point tools: the fixed volume and the carried segmentation
            self._parameterNode.inputVolume = self.registration.fixedVolume
            self._parameterNode.segmentationNode = carried
            self.ui.segmentSelector.setCurrentNode(carried)

    def loadClasses(self, status) -> None:
        """Fill the class picker from the server's catalogue (when it serves vista3d)."""
        self.ui.classTreeWidget.clear()
        served = [engine["name"] for engine in status.engines]
        if self.autoSegmentation.engine not in served:
            self.ui.autoStatusLabel.text = _("The server serves no automatic segmentation engine "
                                             "(start it with --engines ...,vista3d).")
            return
        self.autoSegmentation.fetchCatalogue(onDone=self.populateClasses)

    def populateClasses(self, catalogue) -> None:
        tree = self.ui.classTreeWidget
        tree.clear()
        self.ui.classGroupComboBox.blockSignals(True)
        self.ui.classGroupComboBox.clear()
        self.ui.classGroupComboBox.addItem(_("all groups"))
        for group, entries in catalogue.groups():
            self.ui.classGroupComboBox.addItem(group)
            groupItem = qt.QTreeWidgetItem(tree, [f"{group} ({len(entries)})"])
            groupItem.setFlags(groupItem.flags() | qt.Qt.ItemIsUserCheckable | qt.Qt.ItemIsAutoTristate)
            groupItem.setCheckState(0, qt.Qt.Unchecked)
            for entry in entries:
                item = qt.QTreeWidgetItem(groupItem, [entry.name])
                item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable)
                item.setCheckState(0, qt.Qt.Unchecked)
                item.setData(0, qt.Qt.UserRole, entry.id)
                colour = qt.QColor.fromRgbF(*entry.color)
                item.setData(0, qt.Qt.DecorationRole, colour)
        self.ui.classGroupComboBox.blockSignals(False)
        self.ui.everythingCheckBox.text = _("Everything ({count} classes)").format(count=len(catalogue.everything()))
        self.filterClasses()

    def filterClasses(self, *args) -> None:
        catalogue = self.autoSegmentation.classCatalogue if self.autoSegmentation else None
        if catalogue is None:
            return
        group = self.ui.classGroupComboBox.currentText if self.ui.classGroupComboBox.currentIndex > 0 else None
        shown = {entry.id for entry in catalogue.search(self.ui.classSearchLineEdit.text, group)}
        tree = self.ui.classTreeWidget
        for g in range(tree.topLevelItemCount):
            groupItem = tree.topLevelItem(g)
            visible = 0
            for c in range(groupItem.childCount()):
                item = groupItem.child(c)
                hidden = item.data(0, qt.Qt.UserRole) not in shown
                item.setHidden(hidden)
                visible += not hidden
            groupItem.setHidden(visible == 0)
            groupItem.setExpanded(bool(self.ui.classSearchLineEdit.text) or group is not None)

    def checkedClasses(self) -> list:
        tree, ids = self.ui.classTreeWidget, []
        for g in range(tree.topLevelItemCount):
            groupItem = tree.topLevelItem(g)
            for c in range(groupItem.childCount()):
                item = groupItem.child(c)
                if item.checkState(0) == qt.Qt.Checked:
                    ids.append(int(item.data(0, qt.Qt.UserRole)))
        return ids

    def onRunAutoSegmentation(self) -> None:
        node = self._parameterNode
        logic = self.autoSegmentation
        with slicer.util.tryWithErrorDisplay(_("SlicerFM could not start the automatic segmentation."),
                                             waitCursor=True):
            logic.volumeNode = node.inputVolume
            logic.segmentationNode = node.segmentationNode
            logic.modality = self.logic.modality
            logic.run(self.checkedClasses(), everything=node.autoEverything)
            self.updateGUI()

    def updateJobProgress(self) -> None:
        for logic, bar, label in ((self.registration, self.ui.registrationProgressBar, self.ui.registrationStatusLabel),
                                  (self.autoSegmentation, self.ui.autoProgressBar, self.ui.autoStatusLabel)):
            if logic is None or not logic.running:
                continue
            snapshot = logic.progress.snapshot()
            bar.maximum = 0 if snapshot.fraction is None else 100       # 0: busy indicator
            bar.value = 0 if snapshot.fraction is None else int(round(100 * snapshot.fraction))
            label.setStyleSheet("")
            label.text = snapshot.text()

    def showJobMessage(self, label, text: str, level: str) -> None:
        colour = {"error": "#c62828", "warning": "#b26a00"}.get(level, "")
        label.setStyleSheet(f"color: {colour}" if colour else "")
        label.text = text
        slicer.util.showStatusMessage(f"SlicerFM: {text}", 5000)

    # -- feedback ---------------------------------------------------------------------------

    def showMessage(self, text: str, level: str) -> None:
        colour = {"error": "#c62828", "warning": "#b26a00"}.get(level, "")
        self.ui.messageLabel.setStyleSheet(f"color: {colour}" if colour else "")
        self.ui.messageLabel.text = text
        slicer.util.showStatusMessage(f"SlicerFM: {text}", 5000)

    def showProgress(self, task) -> None:
        self.hideProgress()
        self._progress = slicer.util.createProgressDialog(
            windowTitle=_("SlicerFM"), labelText=_("Waiting for the server: {what}").format(what=task.description),
            maximum=0)
        self._progress.connect("canceled()", self.logic.cancel)

    def hideProgress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def updateGUI(self, *args) -> None:
        if self._parameterNode is None:
            return
        status = self.logic.status
        self.ui.statusLabel.text = status.summary() if status else _("Not connected.")
        local = self._parameterNode.connectionMode == "local"
        for widget in (self.ui.backendPathLineEdit, self.ui.localEnginesLineEdit, self.ui.localDeviceLineEdit):
            widget.enabled = local
        for widget in (self.ui.serverUrlLineEdit, self.ui.tokenLineEdit):
            widget.enabled = not local
        ready = status is not None and bool(self._parameterNode.inputVolume) \
            and bool(self._parameterNode.segmentationNode) and bool(self._parameterNode.segmentID)
        locked = ready and self.logic.isSegmentLocked()
        for button in list(self.toolButtons().values()) + [self.ui.resetButton]:
            button.enabled = ready and not locked
        self.ui.undoButton.enabled = ready and not locked and self.logic.canUndo()
        self.ui.redoButton.enabled = ready and not locked and self.logic.canRedo()
        self.ui.lockButton.enabled = ready
        self.ui.lockButton.checked = locked
        self.ui.disconnectButton.enabled = status is not None
        self.updateJobButtons(status is not None)

    def updateJobButtons(self, connected: bool) -> None:
        node = self._parameterNode
        if self.registration is None:
            return
        registering, segmenting = self.registration.running, self.autoSegmentation.running
        self.ui.registerButton.enabled = connected and not registering and \
            bool(node.registrationFixedVolume) and bool(node.registrationMovingVolume)
        self.ui.cancelRegistrationButton.enabled = registering
        self.ui.carryButton.enabled = self.registration.lastOutcome is not None and not registering
        self.ui.runAutoButton.enabled = connected and not segmenting and bool(node.inputVolume) \
            and bool(node.segmentationNode)
        self.ui.cancelAutoButton.enabled = segmenting
        self.ui.classTreeWidget.enabled = not node.autoEverything
        for bar, running in ((self.ui.registrationProgressBar, registering),
                             (self.ui.autoProgressBar, segmenting)):
            if not running:
                bar.maximum, bar.value = 100, 0


class SlicerFMLogic(ScriptedLoadableModuleLogic, InteractiveSegmentationLogic):
    """The module's Logic: :class:`InteractiveSegmentationLogic` plus Slicer's parameter
    node. From the Python console (calls block and raise errors there)::

        import SlicerFM
        logic = SlicerFM.SlicerFMLogic()     # inline runner (the widget's own runs in the background)
        logic.connect(ConnectionSettings(mode="remote", url="http://gpu:8765", token="..."))
        logic.setInputs(volumeNode, segmentationNode, segmentID)
        logic.addPoint([10.0, -25.0, 40.0], positive=True)   # world RAS mm
    """

    def __init__(self, runner=None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        InteractiveSegmentationLogic.__init__(self, runner)

    def getParameterNode(self):
        return SlicerFMParameterNode(super().getParameterNode())

    def connect(self, settings, onDone=None):
        ensure_dependencies()
        return InteractiveSegmentationLogic.connect(self, settings, onDone)


class SlicerFMTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer. The click test needs a backend: SLICERFM_BACKEND (executable or
    Python environment) or ``slicerfm-backend`` on PATH; without one it fails and says so."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_SlicerFM_PromptNodes()
        self.setUp()
        self.test_SlicerFM_RegistrationTransform()
        self.setUp()
        self.test_SlicerFM_ClickThroughLocalBackend()

    def test_SlicerFM_PromptNodes(self):
        nodes = prompt_nodes(slicer.mrmlScene)
        self.assertEqual(prompt_nodes(slicer.mrmlScene), nodes)
        self.assertEqual(nodes[POSITIVE].GetAttribute("SlicerFM.Polarity"), "positive")
        self.assertEqual(nodes[NEGATIVE].GetAttribute("SlicerFM.Polarity"), "negative")

    def test_SlicerFM_RegistrationTransform(self):
        """A constant displacement becomes a grid transform above the moving volume whose
        transform from parent maps the fixed point x to x + d (no backend needed)."""
        import numpy as np
        from SlicerFMLib.transform_nodes import place_registration, resample_volume

        array = np.zeros((10, 12, 14), np.float32)
        array[3:7, 4:8, 5:9] = 100.0
        moving = slicer.util.addVolumeFromArray(array, name="moving")
        grid = np.diag([1.0, 1.0, 2.0, 1.0])
        field = np.zeros((10, 12, 14, 3), np.float32)
        field[...] = [2.0, -1.0, 4.0]
        node = place_registration(moving, field, grid, "shift")
        self.assertIs(moving.GetParentTransformNode(), node)
        mapped = node.GetTransformFromParent().TransformPoint(3.0, 4.0, 6.0)
        for value, expected in zip(mapped, (5.0, 3.0, 10.0)):
            self.assertAlmostEqual(value, expected, places=3)
        warped = resample_volume(moving, array.shape, grid, "warped")
        self.assertEqual(slicer.util.arrayFromVolume(warped).shape, array.shape)

    def test_SlicerFM_ClickThroughLocalBackend(self):
        import numpy as np

        backend = os.environ.get("SLICERFM_BACKEND") or shutil.which("slicerfm-backend")
        if not backend:
            self.fail("set SLICERFM_BACKEND to a slicerfm-backend executable or Python environment")
        array = np.full((20, 30, 40), -800, np.int16)
        array[5:15, 10:20, 10:30] = 60
        volume = slicer.util.addVolumeFromArray(array, name="block")
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        segmentID = segmentation.GetSegmentation().AddEmptySegment("organ")
        logic = SlicerFMLogic()
        logic.connect(ConnectionSettings(mode="local", backend=backend))
        try:
            logic.setInputs(volume, segmentation, segmentID)
            ijk_to_ras = vtk.vtkMatrix4x4()
            volume.GetIJKToRASMatrix(ijk_to_ras)
            logic.addPoint(ijk_to_ras.MultiplyPoint((20, 15, 10, 1))[:3], positive=True)
            result = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentID, volume)
            self.assertTrue(result[10, 15, 20])
            self.assertFalse(result[:, :, :5].any())
        finally:
            logic.disconnect()
        logging.info("SlicerFM test passed")
