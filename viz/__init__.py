"""The interactive visualizer: an ImGui front end driving `renderer.AsyncRenderer`."""
