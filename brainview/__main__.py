from brainview.cli import main

raise SystemExit(main())
