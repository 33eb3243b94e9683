from xner.cli import main

raise SystemExit(main())
