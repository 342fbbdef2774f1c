/** The bundler's entry point: registers the root (the only module the Remotion bundle starts from). */
import { registerRoot } from "remotion";
import { CodeAnimationRoot } from "./composition";

registerRoot(CodeAnimationRoot);
