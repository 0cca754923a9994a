"""Old name of `python -m renderer.commands.video` (renderer/commands/legacy.py), kept for existing scripts."""

if __name__ == '__main__':
    import sys

    from renderer.commands.legacy import forward
    sys.exit(forward('video'))
