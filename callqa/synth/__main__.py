"""`python -m callqa.synth [out_dir]`: write the demo call set."""

from callqa.synth.demo import main

raise SystemExit(main())
