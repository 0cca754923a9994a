"""Small GLFW / OpenGL / Dear ImGui helpers for the visualizer (no model code, no torch)."""
