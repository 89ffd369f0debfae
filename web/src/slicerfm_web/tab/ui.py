"""The page of a tab (Vuetify 3 through trame): views, side panels, status line.

Every control reads and writes the tab's trame state (keys documented in the modules that
own them) or calls a trigger registered in :mod:`slicerfm_web.tab.app`. Elements a user
(and the browser tests) act on carry stable ``id`` attributes.
"""

from __future__ import annotations

from trame.ui.vuetify3 import VAppLayout
from trame.widgets import html
from trame.widgets import vuetify3 as v

PANEL_STYLE = "font-size: 0.85rem;"


def build_page(server, views, title: str) -> VAppLayout:
    with VAppLayout(server, theme="dark") as layout:
        _app_bar(title)
        with v.VNavigationDrawer(permanent=True, width=380, id="side-panel"):
            with v.VExpansionPanels(v_model=("open_panels", [0, 1]), multiple=True,
                                    variant="accordion"):
                _open_panel()
                _segments_panel()
                _auto_panel()
                _registration_panel()
                _download_panel()
            _messages()
        with v.VMain(style="height: 100vh;"), html.Div(classes="sf-main"):
            with html.Div(classes="sf-views", id="views"):
                views.layout_manager.initialize_layout_grid(layout)
            with html.Div(classes="sf-overlay", v_if="loading"):
                v.VProgressCircular(indeterminate=True, size=42, color="primary")
                html.Div("{{ loading_text }}", classes="mt-2")
        _status_bar()
        _snackbar()
    return layout


def _app_bar(title: str) -> None:
    with v.VAppBar(density="compact", elevation=1):
        v.VAppBarTitle(title, classes="sf-title", style="max-width: 130px;")
        v.VSelect(id="volume-select", label="Volume", v_model=("volume_id",), items=("volumes",),
                  item_title="name", item_value="id", density="compact", hide_details=True,
                  style="max-width: 240px;", classes="mx-2", disabled=("volumes.length === 0",))
        v.VSelect(id="preset-select", label="Window/level", v_model=("preset",),
                  items=("presets",), density="compact", hide_details=True,
                  style="max-width: 170px;", classes="mx-2",
                  update_modelValue="trigger('set_preset', [$event])")
        v.VSelect(id="layout-select", label="Layout", v_model=("layout_name",),
                  items=("['Four views', 'Axial', '3D and axial']",), density="compact",
                  hide_details=True, style="max-width: 160px;", classes="mx-2",
                  update_modelValue="trigger('set_layout', [$event])")
        v.VSpacer()
        v.VSelect(id="engine-select", label="Engine", model_value=("engine",), items=("engines",),
                  item_title="title", item_value="name", density="compact", hide_details=True,
                  item_props=("(item) => ({disabled: !item.ready})",),
                  style="max-width: 280px;", classes="mx-2",
                  update_modelValue="trigger('set_engine', [$event])")
        v.VChip("{{ connected ? 'connected' : 'not connected' }}", id="connection-chip",
                color=("connected ? 'green' : 'red'",), size="small", classes="mr-3",
                title=("server_text",), variant="flat")


def _open_panel() -> None:
    with v.VExpansionPanel(title="Open an image", id="open-panel"):
        with v.VExpansionPanelText(style=PANEL_STYLE):
            html.Input(type="file", id="upload-input", classes="sf-file",
                       accept=".nii,.nii.gz,.nrrd,.mha,.zip",
                       change="window.slicerfm.upload($event.target)",
                       disabled=("loading",))
            html.Div("NIfTI, NRRD, MetaImage, or a .zip of a DICOM series "
                     "(at most {{ upload_limit_text }})", classes="text-caption text-grey mt-1")
            v.VProgressLinear(v_if="upload_percent != null", model_value=("upload_percent", None),
                              color="primary", height=6, classes="mt-2")
            with html.Div(v_if="dicom_choices.length", id="dicom-choices", classes="mt-2"):
                html.Div("This zip holds several series: open which one?", classes="mb-1")
                v.VBtn("{{ c.label }}", v_for="c in dicom_choices", key="c.index", block=True,
                       size="small", variant="tonal", classes="mb-1 sf-series",
                       click="trigger('choose_series', [c.index])")
            with html.Div(v_if="data_entries.length", classes="mt-3"):
                html.Div("Data folder {{ data_dir_name }}", classes="text-subtitle-2")
                with v.VList(density="compact", max_height=220, classes="sf-data-list",
                             id="data-list"):
                    v.VListItem(v_for="e in data_entries", key="e.key", title=("e.key",),
                                subtitle=("e.kind",), click="trigger('open_data_entry', [e.key])",
                                disabled=("loading",))


def _segments_panel() -> None:
    with v.VExpansionPanel(title="Segments and tools", id="segments-panel"):
        with v.VExpansionPanelText(style=PANEL_STYLE):
            with html.Div(classes="d-flex align-center flex-wrap"):
                with v.VBtnToggle(v_model=("active_tool",), density="compact", divided=True,
                                  variant="outlined", classes="mr-2",
                                  update_modelValue="trigger('set_tool', [$event || ''])",
                                  disabled=("!volume_id || segment_locked",)):
                    v.VBtn(icon="mdi-plus-circle", value="positive", id="tool-positive",
                           color="green", title="Positive point (Alt+P)")
                    v.VBtn(icon="mdi-minus-circle", value="negative", id="tool-negative",
                           color="red", title="Negative point (Alt+N)")
                    v.VBtn(icon="mdi-vector-square", value="box", id="tool-box",
                           color="yellow", title=("slice_engine ? 'Box on one slice (Alt+B)' : "
                                                  "'Box (Alt+B)'",))
                v.VBtn(icon="mdi-undo", id="undo-button", size="small", variant="text",
                       disabled=("!can_undo",), click="trigger('undo')", title="Undo the last AI step (Alt+Z)")
                v.VBtn(icon="mdi-redo", id="redo-button", size="small", variant="text",
                       disabled=("!can_redo",), click="trigger('redo')", title="Redo (Alt+Y)")
                v.VBtn(icon="mdi-eraser", id="reset-button", size="small", variant="text",
                       disabled=("!volume_id || segment_locked",), click="trigger('reset_segment')",
                       title="Empty the segment (undoable)")
            with html.Div(v_if="busy", classes="d-flex align-center mt-2", id="busy-line"):
                v.VProgressCircular(indeterminate=True, size=16, width=2, classes="mr-2")
                html.Span("{{ busy_text }}", classes="text-caption")
                v.VSpacer()
                v.VBtn("Cancel", id="cancel-button", size="x-small", variant="tonal",
                       click="trigger('cancel')")
            _propagation()
            _segment_list()
            with html.Div(classes="d-flex align-center mt-2"):
                v.VBtn("Add segment", id="add-segment", prepend_icon="mdi-plus", size="small",
                       variant="tonal", disabled=("!volume_id",), click="trigger('add_segment')")
                v.VSpacer()
                v.VCheckbox(id="show-3d", model_value=("show_3d",), label="3D", density="compact",
                            hide_details=True, title="Show the segments as surfaces in the 3D view",
                            update_modelValue="trigger('set_show_3d', [$event])")
            with html.Div(classes="d-flex align-center mt-3"):
                v.VTextField(id="goto-field", v_model=("goto_text", ""), label="Go to R, A, S (mm)",
                             density="compact", hide_details=True,
                             raw_attrs=['@keydown.enter="trigger(\'go_to\', [goto_text])"'])
                v.VBtn("Go", id="goto-button", size="small", variant="text", classes="ml-1",
                       click="trigger('go_to', [goto_text])")


def _propagation() -> None:
    """With a slice engine (medsam, sam): how its box works, and the propagation's progress."""
    html.Div("This engine segments slice by slice: draw the box on one slice, in the axial, "
             "coronal or sagittal view; that slice comes back at once, then the result is "
             "carried to the neighbouring slices.", v_if="slice_engine", id="slice-engine-hint",
             classes="text-caption text-grey mt-2")
    with html.Div(v_if="propagation_progress.running", classes="mt-2", id="propagation-line"):
        with html.Div(classes="d-flex align-center"):
            html.Span("{{ propagation_progress.text }}", classes="text-caption",
                      id="propagation-text")
            v.VSpacer()
            v.VBtn("Cancel", id="propagation-cancel", size="x-small", variant="tonal",
                   title="Stop the propagation: the prompted slice stays",
                   click="trigger('cancel_propagation')")
        v.VProgressLinear(model_value=("propagation_progress.percent || 0",),
                          indeterminate=("propagation_progress.percent == null",),
                          color="primary", height=6, classes="mt-1")


def _segment_list() -> None:
    with v.VList(density="compact", classes="mt-2 sf-segments", id="segment-list"):
        with v.VListItem(v_for="s in segments", key="s.id", active=("s.id === active_segment",),
                         click="trigger('select_segment', [s.id])",
                         raw_attrs=[':data-segment="s.name"', 'class="sf-segment"']):
            with v.Template(v_slot_prepend=True):
                with v.VMenu(close_on_content_click=False):
                    with v.Template(v_slot_activator="{ props }"):
                        html.Div(v_bind="props", classes="sf-swatch mr-2",
                                 style=("{background: s.color}",), title="Colour")
                    v.VColorPicker(model_value=("s.color",), mode="hex", modes=("['hex']",),
                                   update_modelValue="trigger('set_segment_colour', [s.id, $event])")
            html.Input(classes="sf-name", value=("s.name",), title="Rename: type and press Enter",
                       blur="trigger('rename_segment', [s.id, $event.target.value])",
                       raw_attrs=['@keydown.enter="$event.target.blur()"'])
            with v.Template(v_slot_append=True):
                v.VBtn(icon=("s.visible ? 'mdi-eye' : 'mdi-eye-off'",), size="x-small",
                       variant="text", classes="sf-visible", title="Show / hide",
                       raw_attrs=['@click.stop="trigger(\'set_segment_visible\', [s.id, !s.visible])"'])
                v.VBtn(icon=("s.locked ? 'mdi-lock' : 'mdi-lock-open-variant'",), size="x-small",
                       variant="text", classes="sf-lock",
                       color=("s.locked ? 'amber' : undefined",),
                       title="Lock: no AI result on another segment changes it",
                       raw_attrs=['@click.stop="trigger(\'set_segment_locked\', [s.id, !s.locked])"'])
                v.VBtn(icon="mdi-delete", size="x-small", variant="text", classes="sf-delete",
                       title="Delete",
                       raw_attrs=['@click.stop="trigger(\'delete_segment\', [s.id])"'])


def _auto_panel() -> None:
    with v.VExpansionPanel(title="Automatic segmentation", id="auto-panel"):
        with v.VExpansionPanelText(style=PANEL_STYLE):
            html.Div("{{ auto_note }}", v_if="auto_note", classes="text-caption mb-2")
            with html.Div(v_if="auto_engines.length"):
                v.VSelect(id="auto-engine", label="Engine", model_value=("auto_engine",),
                          items=("auto_engines",), density="compact", hide_details=True,
                          classes="mb-2", update_modelValue="trigger('set_auto_engine', [$event])")
            with html.Div(v_if="auto_available"):
                v.VTextField(id="auto-search", v_model=("auto_search",), label="Search classes",
                             density="compact", hide_details=True, clearable=True,
                             disabled=("auto_everything",))
                v.VCheckbox(id="auto-everything", v_model=("auto_everything",), density="compact",
                            hide_details=True, label=("`Everything (${auto_everything_count} classes)`",))
                with html.Div(classes="sf-class-list", v_if="!auto_everything"):
                    v.VCheckbox(v_for="c in auto_classes.filter(c => auto_shown.includes(c.id))",
                                key="c.id", v_model=("auto_selected",), value=("c.id",),
                                label=("`${c.name} (${c.group})`",), density="compact",
                                hide_details=True, color=("c.color",))
                _job_controls("auto", "Segment", "run_auto", "cancel_auto",
                              "!volume_id || (!auto_everything && !auto_selected.length)")


def _registration_panel() -> None:
    with v.VExpansionPanel(title="Registration", id="registration-panel"):
        with v.VExpansionPanelText(style=PANEL_STYLE):
            for role in ("fixed", "moving"):
                v.VSelect(id=f"registration-{role}", label=f"{role.capitalize()} volume",
                          v_model=(f"registration_{role}",), items=("volumes",), item_title="name",
                          item_value="id", density="compact", hide_details=True, classes="mb-2")
            v.VSelect(id="registration-engine", label="Engine", v_model=("registration_engine",),
                      items=("registration_engines",), density="compact", hide_details=True,
                      classes="mb-2")
            _job_controls("registration", "Register", "run_registration", "cancel_registration",
                          "!registration_fixed || !registration_moving || "
                          "registration_fixed === registration_moving")
            v.VBtn("Carry segments onto the fixed scan", id="carry-button", size="small",
                   variant="tonal", block=True, classes="mt-2", disabled=("!registration_done",),
                   click="trigger('carry_segments')")


def _job_controls(prefix: str, label: str, run: str, cancel: str, disabled: str) -> None:
    progress = f"{prefix}_progress"
    with html.Div(classes="d-flex align-center mt-2"):
        v.VBtn(label, id=f"{prefix}-run", size="small", color="primary",
               disabled=(f"{progress}.running || {disabled}",), click=f"trigger('{run}')")
        v.VBtn("Cancel", id=f"{prefix}-cancel", size="small", variant="text", classes="ml-2",
               disabled=(f"!{progress}.running",), click=f"trigger('{cancel}')")
    v.VProgressLinear(v_if=f"{progress}.running", model_value=(f"{progress}.percent || 0",),
                      indeterminate=(f"{progress}.percent == null",), color="primary", height=6,
                      classes="mt-2")
    html.Div(f"{{{{ {progress}.text }}}}", v_if=f"{progress}.running", classes="text-caption",
             id=f"{prefix}-progress-text")


def _download_panel() -> None:
    with v.VExpansionPanel(title="Download", id="download-panel"):
        with v.VExpansionPanelText(style=PANEL_STYLE):
            for kind, label in (("segmentation.seg.nrrd", "Segmentation (.seg.nrrd)"),
                                ("labels.nii.gz", "Label map (NIfTI)"),
                                ("labels.json", "Label names and colours (JSON)")):
                v.VBtn(label, href=f"download/{kind}", id=f"download-{kind.split('.')[0]}-"
                       f"{kind.split('.')[-1]}", size="small", variant="tonal", block=True,
                       classes="mb-1", disabled=("!volume_id",), prepend_icon="mdi-download",
                       raw_attrs=["download"])


def _messages() -> None:
    with html.Div(classes="pa-3 sf-messages", id="messages"):
        html.Div("Messages", classes="text-subtitle-2")
        html.Div("{{ m.time }} {{ m.text }}", v_for="(m, i) in messages.slice(0, 12)", key="i",
                 classes=("`sf-message sf-${m.level}`",))


def _status_bar() -> None:
    with v.VFooter(app=True, height=28, classes="sf-footer"):
        html.Span("{{ message ? message.text : '' }}", id="status-text",
                  classes=("message ? `sf-${message.level}` : ''",))
        v.VSpacer()
        html.Span("{{ last_result ? `last result: ${last_result.roundtrip_ms} ms round trip, "
                  "server ${last_result.server_ms} ms` : '' }}", id="result-text",
                  classes="text-caption text-grey")


def _snackbar() -> None:
    v.VSnackbar("{{ message && message.text }}", v_model=("snackbar", False), timeout=6000,
                color="red-darken-2", location="top", id="error-snackbar")
