"""The automatic segmentation and registration panels: the module's job Logics in the page.

Both run as server jobs on workers of their own (a long job never delays a click), report
progress (``state.auto_progress`` / ``state.registration_progress``, published by the
session's pump) and can be cancelled.

Automatic segmentation is offered when the server serves one of the configured automatic
engines (``vista3d`` by default): the class list comes from the server's catalogue
(``SlicerFMLib.class_catalogue``), searched with every word of the search text; "everything"
asks for the engine's everything set. Registration takes a fixed and a moving volume among
those open, keeps a resampled copy of the moving volume on the fixed grid, shows it over
the fixed one, and can carry the moving volume's segments onto the fixed scan.
"""

from __future__ import annotations

from typing import List

from SlicerFMLib.registration_logic import ENGINES as REGISTRATION_ENGINES

from .segments import hex_colour
from .session import Session
from .volumes import volume_entries
from .workspace import Workspace


class AutoPanel:
    def __init__(self, state, session: Session, workspace: Workspace, engines: List[str]):
        self.state = state
        self.session = session
        self.workspace = workspace
        self.candidates = engines
        state.update({"auto_available": False, "auto_engine": "", "auto_engines": [], "auto_note":
                      "connecting...", "auto_classes": [], "auto_shown": [], "auto_search": "",
                      "auto_selected": [], "auto_everything": False, "auto_everything_count": 0,
                      "auto_progress": {"running": False, "text": "", "percent": None}})
        session.on_connected.append(self._connected)
        session.core.catalogueCallback = self._catalogue
        state.change("auto_search")(lambda auto_search, **_: self._filter(auto_search))

    def set_engine(self, name: str) -> None:
        """Use another served automatic engine (its class list is fetched)."""
        if name not in self.state.auto_engines:
            raise ValueError(f"the server serves no automatic engine {name!r}")
        if name == self.session.auto.engine and self.session.auto.classCatalogue is not None:
            return
        self.session.auto.engine = name
        self.state.auto_engine = name
        self.state.auto_available = False
        self.state.auto_note = "loading the class list..."
        self.session.auto.fetchCatalogue(onDone=self._catalogue)

    def _connected(self, status) -> None:
        served = [engine.get("name") for engine in status.engines]
        available = [name for name in self.candidates if name in served]
        if not available:
            self.state.auto_available = False
            self.state.auto_note = ("The server serves no automatic segmentation engine "
                                    f"({', '.join(self.candidates)}): start it with "
                                    "--engines classic,vista3d.")
            return
        self.state.auto_engines = available
        self.state.auto_engine = available[0]
        if self.session.auto.engine == available[0]:
            return                 # the Logic fetches its engine's class list by itself
        self.set_engine(available[0])

    def _catalogue(self, catalogue) -> None:
        rows = []
        for group, entries in catalogue.groups():
            for entry in entries:
                rows.append({"id": entry.id, "name": entry.name, "group": group,
                             "color": hex_colour(entry.color)})
        self.state.auto_classes = rows
        self.state.auto_everything_count = len(catalogue.everything())
        self.state.auto_available = True
        self.state.auto_note = ""
        self._filter(self.state.auto_search)

    def _filter(self, text: str) -> None:
        catalogue = self.session.auto.classCatalogue
        if catalogue is None:
            self.state.auto_shown = []
            return
        shown = {entry.id for entry in catalogue.search(text or "", None)}
        self.state.auto_shown = [row["id"] for row in self.state.auto_classes if row["id"] in shown]

    def run(self) -> None:
        auto = self.session.auto
        auto.volumeNode = self.workspace.volume()
        auto.segmentationNode = self.workspace.segmentation()
        auto.modality = self.session.interactive.modality
        selected = [int(v) for v in self.state.auto_selected or []]
        auto.run(selected, everything=bool(self.state.auto_everything),
                 onDone=lambda _outcome: self.workspace.segments.refresh())

    def cancel(self) -> None:
        self.session.auto.cancel()


class RegistrationPanel:
    def __init__(self, state, session: Session, workspace: Workspace):
        self.state = state
        self.session = session
        self.workspace = workspace
        state.update({"registration_engines": list(REGISTRATION_ENGINES),
                      "registration_engine": "classic", "registration_fixed": "",
                      "registration_moving": "", "registration_done": False,
                      "registration_progress": {"running": False, "text": "", "percent": None}})

    def _volume(self, node_id: str, role: str):
        node = self.workspace.scene.GetNodeByID(node_id) if node_id else None
        if node is None:
            raise ValueError(f"choose the {role} volume")
        return node

    def run(self) -> None:
        logic = self.session.registration
        logic.fixedVolume = self._volume(self.state.registration_fixed, "fixed")
        logic.movingVolume = self._volume(self.state.registration_moving, "moving")
        logic.engine = self.state.registration_engine
        logic.harden = True                  # a copy on the fixed grid to look at and segment
        self.state.registration_done = False
        logic.run(onDone=self._done)

    def _done(self, outcome) -> None:
        if outcome is None:
            return
        fixed = self.session.registration.fixedVolume
        self.state.volumes = volume_entries(self.workspace.scene)
        self.workspace.select_volume(fixed.GetID())
        self.workspace.views.show_volume(fixed, foreground=outcome.warped_volume, opacity=0.5)
        self.state.registration_done = True

    def carry(self) -> None:
        """Carry the moving volume's segments onto the fixed scan; the result becomes the
        fixed volume's segmentation, ready for point and box refinement."""
        logic = self.session.registration
        if logic.lastOutcome is None:
            raise ValueError("run a registration first")
        moving = logic.movingVolume
        source_id = self.workspace.segmentation_of.get(moving.GetID())
        source = self.workspace.scene.GetNodeByID(source_id) if source_id else None
        if source is None or source.GetSegmentation().GetNumberOfSegments() == 0:
            raise ValueError(f"'{moving.GetName()}' has no segments to carry: segment it first")
        carried = logic.carrySegments(source)
        self.workspace.use_segmentation(logic.fixedVolume, carried)

    def cancel(self) -> None:
        self.session.registration.cancel()
